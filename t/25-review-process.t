#!/usr/bin/perl
# Found in a review of the process model, portier(8) and portier.conf(5):
# a terminal's WINCH is no operator's; an old master whose new binary dies
# after WINCH serves again; an upgrade passes any number of listening
# sockets; a daemon's stderr follows its error log; settings that -t
# accepted but that fail at run time (durations that overflow a timer,
# reuseport on a unix socket, an open-files limit the system refuses) are
# refused by -t; -F and a reload that sets pid_file; root follows no
# planted symbolic link to give a file away or overwrite it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use IO::Socket::INET;
use POSIX ();
use Test::More;

PortierTest::need_modules(qw(rewrite));

sub conf {
	my ($text) = @_;
	return <<"EOF";
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 $text"; } ); } );
EOF
}

sub body_of {
	my ($t, $port) = @_;
	my $r = $t->get('/', port => $port, timeout => 3) // return '';
	return $r->{body} // '';
}

# ---- WINCH from a terminal whose window is resized -----------------------

# In the foreground of a terminal (daemon = false, -F, docker run -t), a
# window resize makes the kernel send WINCH to the foreground process
# group: the workers must not be stopped for it.
SKIP: {
	# a pseudo-terminal (Linux's ioctls): unlock it, find the slave's
	# number
	my $ptm;
	skip "no pseudo-terminal", 5
		unless $^O eq 'linux' && open($ptm, '+<', '/dev/ptmx');
	my $t = PortierTest->new;
	$t->config(conf('a'));
	my $zero = pack('i', 0);
	ioctl($ptm, 0x40045431, $zero) or die "TIOCSPTLCK: $!";
	my $n = pack('I', 0);
	ioctl($ptm, 0x80045430, $n) or die "TIOCGPTN: $!";
	my $slave = '/dev/pts/' . unpack('I', $n);
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		POSIX::setsid();
		# a session leader opening a terminal makes it its own
		open(my $tty, '+<', $slave) or POSIX::_exit(126);
		open STDIN, '<&', $tty or POSIX::_exit(126);
		open STDOUT, '>>', $t->dir . '/stdout.log' or POSIX::_exit(126);
		open STDERR, '>>', $t->dir . '/stderr.log' or POSIX::_exit(126);
		exec(PortierTest::binary(), '-c', $t->conf_path)
			or POSIX::_exit(127);
	}
	$t->{pid} = $pid;
	my ($w) = $t->wait_workers(1);
	ok($w, 'in the foreground of a terminal: a worker runs');
	my $size = pack('S4', 40, 100, 0, 0);
	ioctl($ptm, 0x5414, $size) or die "TIOCSWINSZ: $!";
	ok($t->wait_log(qr/WINCH from a terminal: ignored/),
		'the window is resized: WINCH comes and is ignored');
	ok(PortierTest::alive($w), 'the worker still runs');
	is(body_of($t), 'a', 'and serves');
	# an operator's WINCH (kill) still stops the workers
	$t->signal('WINCH');
	ok(PortierTest::wait_exit($w), 'WINCH from kill(1) stops the worker');
	$t->stop;
	close $ptm;
}

# ---- the new binary dies after WINCH ------------------------------------------

# USR2, WINCH old: the old master has no workers. If the new master goes
# away then (a crash, a QUIT before HUP old), the old one must serve again.
{
	my $t = PortierTest->new;
	$t->config(conf('a'))->run;
	my $m = $t->master_pid;
	my ($w) = $t->wait_workers(1);
	$t->signal('USR2');
	my $new;
	ok(PortierTest::wait_for(sub {
		$new = $t->read_pid;
		return $new && $new != $m;
	}), 'USR2: a new master');
	$t->also_stop($new);
	ok(scalar(() = $t->wait_workers(1, $new)), 'with its worker');
	$t->signal('WINCH');
	ok(PortierTest::wait_exit($w), 'WINCH: the old worker exits');
	kill 'KILL', $new;
	ok(PortierTest::wait_exit($new), 'the new master dies');
	ok(PortierTest::wait_for(sub { $t->worker_pids }),
		'the old master starts its workers again');
	ok(PortierTest::wait_for(sub { body_of($t) eq 'a' }), 'and serves');
	is($t->read_pid, $m, 'the pid file names the old master again');
	ok($t->log_has(qr/starting workers again/), 'logged');
}

# ---- an upgrade with more than 256 listening sockets -----------------------

{
	my $t = PortierTest->new;
	# distinct free ports: hold them all until every one is known
	my @hold = map {
		IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
			Listen => 1, ReuseAddr => 1) or die "no free port: $!"
	} 1 .. 300;
	my @ports = map { $_->sockport } @hold;
	close $_ for @hold;
	$t->{ports}[0] = $ports[0];
	my $listen = join ', ', map { "\"127.0.0.1:$_\"" } @ports;
	$t->config(<<"EOF")->run;
servers = ( { listen = [ $listen ];
  locations = ( { path = "/"; return = "200 a"; } ); } );
EOF
	my $m = $t->master_pid;
	$t->signal('USR2');
	my $new;
	ok(PortierTest::wait_for(sub {
		$new = $t->read_pid;
		return $new && $new != $m && $t->wait_workers(1, $new, 0.1);
	}), '300 listening sockets: the new master starts');
	$t->also_stop($new);
	ok(!$t->log_has(qr/bind\(\) to .* failed/), 'it binds nothing again');
	is(scalar(() = PortierTest::listen_inodes($ports[-1])), 1,
		'the last port is still one socket');
	$t->signal('WINCH');
	ok(PortierTest::wait_for(sub { !$t->worker_pids }), 'WINCH old');
	is(body_of($t, $ports[-1]), 'a', 'the new master serves the last port');
	$t->stop;
}

# ---- a daemon's stderr follows its error log ------------------------------------

{
	my $t = PortierTest->new;
	$t->config("daemon = true;\n" . conf('a'));
	my ($rc, undef, $err) = $t->run_cmd('-c', $t->conf_path);
	is($rc, 0, 'daemon: started') or diag($err);
	my $m;
	ok(PortierTest::wait_for(sub { $m = $t->read_pid }), 'daemon: pid file');
	$t->also_stop($m);
	my ($w) = $t->wait_workers(1, $m);
	my $log = $t->error_log;
	is(readlink("/proc/$m/fd/2"), $log, 'daemon: stderr is the error log');
	rename $log, "$log.1" or die;
	kill 'USR1', $m;
	ok(PortierTest::wait_for(sub { (readlink("/proc/$m/fd/2") // '') eq $log }),
		'USR1 after a rename: the master\'s stderr is the new file');
	ok(PortierTest::wait_for(sub { (readlink("/proc/$w/fd/2") // '') eq $log }),
		'and the worker\'s');
	my $log2 = $t->dir . '/error2.log';
	$t->config("daemon = true;\nerror_log = \"$log2\";\n" . conf('b'));
	kill 'HUP', $m;
	ok(PortierTest::wait_for(sub { (readlink("/proc/$m/fd/2") // '') eq $log2 }),
		'a reload to another error_log: stderr follows');
	# Right after the reload the old worker may still be the only one:
	# wait for its successor, not for any worker.
	my $w2;
	PortierTest::wait_for(sub {
		($w2) = grep { $_ != $w
			&& PortierTest::cmdline($_) eq 'portier: worker process' }
			PortierTest::children($m);
		return $w2;
	});
	ok($w2 && (readlink("/proc/$w2/fd/2") // '') eq $log2,
		'and the new worker\'s');
	PortierTest::stop_pid($m);
}

# ---- -t refuses what would fail at run time -----------------------------------

sub check_conf {
	my ($t, $text) = @_;
	$t->config($text);
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $t->conf_path);
	return ($rc, $err);
}

{
	my $t = PortierTest->new;
	# now + the duration, in ms, overflowed: the timer fired at once,
	# and QUIT cut the requests in flight
	for my $s ('worker_shutdown_timeout = "9223372036854775s";',
		'keepalive_timeout = "106751991167d";',
		'client_header_timeout = "366d";') {
		my ($name) = $s =~ /^(\w+)/;
		my ($rc, $err) = check_conf($t, "$s\n" . conf('a'));
		is($rc, 1, "-t: $name too long: refused");
		like($err, qr/portier\.conf:\d+: "$name": .* is longer than 365d/,
			'with file:line');
	}
	my ($rc, $err) = check_conf($t,
		"worker_shutdown_timeout = \"365d\";\n" . conf('a'));
	is($rc, 0, '-t: 365d is accepted') or diag($err);

	# SO_REUSEPORT does not exist for AF_UNIX: the start failed
	($rc, $err) = check_conf($t, <<'EOF');
worker_processes = 2;
servers = ( { listen = [ "127.0.0.1:%%PORT_0%%", "unix:%%DIR%%/s.sock reuseport" ];
  locations = ( { path = "/"; return = "200 a"; } ); } );
EOF
	is($rc, 1, '-t: reuseport on a unix socket: refused');
	like($err, qr/:\d+: "listen": unix:\S+: "reuseport" is for TCP/,
		'with file:line');

	# setrlimit() failed in every worker, which was never respawned
	my $max = $> == 0 ? do {
		open my $f, '<', '/proc/sys/fs/nr_open' or die; my $v = <$f>; 0 + $v
	} : (split ' ', `sh -c 'ulimit -Hn'`)[0];
	SKIP: {
		skip 'no open-files limit', 2 unless $max =~ /^\d+$/ && $max < 100000000;
		($rc, $err) = check_conf($t, "worker_rlimit_nofile = "
			. ($max + 1) . ";\n" . conf('a'));
		is($rc, 1, '-t: worker_rlimit_nofile above the system\'s: refused');
		like($err, qr/portier\.conf:\d+: "worker_rlimit_nofile": \d+ is above what the system allows/,
			'with file:line');
	}
	($rc, $err) = check_conf($t, "worker_rlimit_nofile = 64;\n"
		. "worker_connections = 1000;\n" . conf('a'));
	is($rc, 0, '-t: more worker_connections than descriptors: accepted');
	like($err, qr/warning: "worker_connections" \(1000\) exceed the open files limit of a worker \(64\)/,
		'with a warning');
}

# ---- a location in an included file is reported with its own file --------------

{
	my $t = PortierTest->new;
	$t->write_file('locs.conf', "\n\n\n    { path = \"/a\"; return = \"200 b\"; }\n");
	my ($rc, $err) = check_conf($t, <<'EOF');
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = (
    { path = "/a"; return = "200 a"; },
@include "locs.conf"
  ); } );
EOF
	is($rc, 1, '-t: a duplicate location from an @include: refused');
	like($err, qr{/locs\.conf:4: duplicate location "/a"},
		'named with its file and line');
}

# ---- -F: a reload that sets or unsets pid_file ------------------------------------

{
	my $t = PortierTest->new;
	my $body = $t->expand(conf('a'));
	my $base = "daemon = false;\nworker_processes = 1;\n"
		. "error_log = \"" . $t->error_log . "\";\n";
	$t->write_file('portier.conf', $base . $body);
	$t->run(args => ['-F'], no_pid => 1);
	my $m = $t->master_pid;
	ok(!-e $t->pid_file, '-F without pid_file: none written');
	$t->write_file('portier.conf', $base
		. "pid_file = \"" . $t->pid_file . "\";\n" . $body);
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { ($t->read_pid // 0) == $m }),
		'a reload sets pid_file: written');
	my ($rc, undef, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'reload');
	is($rc, 0, '-s finds the master') or diag($err);
	$t->write_file('portier.conf', $base . $body);
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { !-e $t->pid_file }),
		'a reload unsets it: removed');
	$t->stop;
}

# ---- root: no planted symbolic link is followed to give a file away -------------

SKIP: {
	skip 'as root only', 6 unless $> == 0;
	my $t = PortierTest->new;
	my $d = $t->dir;
	$t->write_file('victim', "secret\n", 0644);
	$t->write_file('victim2', "secret2\n", 0644);
	symlink "$d/victim", "$d/error.log" or die "symlink: $!";
	symlink "$d/victim2", "$d/portier.pid.tmp" or die "symlink: $!";
	$t->config("user = \"nobody\";\n" . conf('a'))->run;
	is((stat "$d/victim")[4], 0,
		'error_log a symbolic link: its target is not given to the worker user');
	like($t->read_file('victim'), qr/started/, 'the log is written through it');
	rename "$d/victim", "$d/victim.1";
	symlink "$d/victim", "$d/error.log.new" or die;
	$t->write_file('victim', '', 0644);
	rename "$d/error.log.new", "$d/error.log" or die;
	$t->signal('USR1');
	$t->wait_log(qr/reopening logs/, 'victim.1');
	$t->signal('HUP'); # logged in the reopened file
	ok($t->wait_log(qr/reloading/, 'victim'), 'USR1 through a new link');
	is((stat "$d/victim")[4], 0, 'whose target is not given away either');
	is($t->read_file('victim2'), "secret2\n",
		'a link at the pid file\'s temporary name is not written through');
	ok(!-l $t->pid_file && $t->read_pid == $t->master_pid,
		'the pid file is a file of its own');
	$t->stop;
}

done_testing;
