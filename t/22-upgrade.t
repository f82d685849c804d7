#!/usr/bin/perl
# Hot binary upgrade, portier(8): USR2 starts the binary found at the path
# the master was started from (a package upgrade replaced the file), with
# every listening socket, per-worker reuseport ones included; WINCH and
# QUIT retire the old master; HUP old + QUIT new roll back and restore the
# pid file. All of it under continuous load, with no failed request.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierLoad;
use File::Copy qw(copy);
use IO::Socket::UNIX;
use POSIX qw(:sys_wait_h);
use Test::More;

PortierTest::need_modules(qw(rewrite static));

sub body_of {
	my ($t, $port) = @_;
	my $r = $t->get('/', port => $port, timeout => 3) // return '';
	return $r->{body} // '';
}

# The body of / over the unix socket, or ''.
sub unix_body {
	my ($t) = @_;
	my $s = IO::Socket::UNIX->new(Peer => $t->dir . '/s.sock') or return '';
	syswrite($s, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	my $r = PortierTest::parse_response(PortierTest::read_until($s, undef, 3));
	return $r ? $r->{body} // '' : '';
}

# Bodies seen on n new connections to port.
sub bodies {
	my ($t, $port, $n) = @_;
	my %seen;
	$seen{ body_of($t, $port) }++ for 1 .. $n;
	return \%seen;
}

# Poll until every body in want was seen on new connections to port.
sub see_all {
	my ($t, $port, @want) = @_;
	my %seen;
	return PortierTest::wait_for(sub {
		$seen{ body_of($t, $port) }++;
		return !grep { !$seen{$_} } @want;
	}, 10);
}

sub config_text {
	my ($text) = @_;
	return <<"EOF";
worker_processes = 2;
keepalive_timeout = "3s";
servers = (
  { listen = [ "127.0.0.1:%%PORT_0%%", "127.0.0.1:%%PORT_1%% reuseport",
               "unix:%%DIR%%/s.sock" ];
    locations = ( { path = "/"; return = "200 $text"; },
                  { path = "/big"; root = "%%DIR%%/www"; },
                  { path = "/huge"; root = "%%DIR%%/www"; } ); }
);
EOF
}

my $big = PortierTest::test_data(1 << 20);
my $huge = PortierTest::test_data(PortierTest::inflight_size());

# A download begun now and stalled: the worker serving it must finish it
# whatever signal comes meanwhile (finish_download checks).
sub start_download {
	my ($t, $port) = @_;
	$t->write_file('www/huge', $huge) unless -e $t->dir . '/www/huge';
	my $s = $t->slow_get('/huge', port => $port);
	my $buf = '';
	PortierTest::slow_read($s, \$buf, 512 * 1024);
	return [$s, \$buf];
}

sub finish_download {
	my ($dl, $name) = @_;
	my ($s, $buf) = @$dl;
	PortierTest::slow_read($s, $buf, length($huge) + 1024, 0);
	my ($head, $body) = PortierTest::split_response($$buf);
	ok(length($body) == length($huge) && $body eq $huge,
		"$name: the download in flight completes")
		or diag("got " . length($body) . " bytes; head: $head");
}

# Install a copy of the binary at bin, replacing what is there the way a
# package manager does (a new file renamed over the old); returns the new
# file's inode.
sub install_binary {
	my ($bin) = @_;
	copy(PortierTest::binary(), "$bin.new") or die "copy: $!";
	chmod 0755, "$bin.new";
	rename "$bin.new", $bin or die "rename: $!";
	return (stat $bin)[1];
}

# The listening sockets of both ports: { port => [inodes] }.
sub sockets_of {
	my ($t) = @_;
	return [ [PortierTest::listen_inodes($t->port(0))],
		[PortierTest::listen_inodes($t->port(1))] ];
}

sub start_load {
	my ($t) = @_;
	# keep-alive and one-shot clients on the shared socket and on the
	# reuseport sockets
	# reuseport sockets, and a slow download nearly always in flight
	$t->write_file('www/big', $big);
	return map { PortierLoad->start(dir => $t->dir, port => $t->port($_),
		body => qr/^(old|new)$/, keepalive => 1, close => 1,
		slow => 1, slow_path => '/big', slow_body => $big) } 0, 1;
}

sub stop_load {
	my ($name, @load) = @_;
	my %sum = (ok => 0, retries => 0, nfail => 0, failures => [], bodies => {});
	for my $l (@load) {
		my $r = $l->stop;
		$sum{$_} += $r->{$_} for qw(ok retries nfail);
		push @{ $sum{failures} }, @{ $r->{failures} };
		$sum{bodies}{$_} += $r->{bodies}{$_} for keys %{ $r->{bodies} };
	}
	is($sum{nfail}, 0, "$name under load: no failed request ($sum{ok} ok, "
		. "$sum{retries} idle keep-alive retries)")
		or diag(join "\n", @{ $sum{failures} });
	ok($sum{ok} >= 100, "$name under load: enough requests ($sum{ok})");
	return \%sum;
}

# USR2 to the master m; returns the new master's pid once it serves.
sub upgrade {
	my ($t, $m) = @_;
	my $pidf = $t->pid_file;
	$t->signal('USR2', $m);
	my $new;
	ok(PortierTest::wait_for(sub {
		$new = $t->read_pid;
		return $new && $new != $m;
	}), 'USR2: the pid file names a new master');
	$t->also_stop($new);
	is($t->read_pid("$pidf.oldbin"), $m, 'USR2: the old pid is in <pid_file>.oldbin');
	is(PortierTest::ppid_of($new), $m, 'USR2: the new master is a child of the old');
	is(scalar(() = $t->wait_workers(2, $new)), 2, 'USR2: the new master has its workers');
	is(scalar(() = $t->wait_workers(2, $m)), 2, 'USR2: the old keeps its workers');
	return $new;
}

# ---- upgrade: USR2, WINCH, QUIT ---------------------------------------------

{
	my $t = PortierTest->new;
	my $bin = $t->dir . '/sbin/portier';
	mkdir $t->dir . '/sbin';
	install_binary($bin);
	$t->config(config_text('old'))->run(bin => $bin, workers => 2);
	my $m = $t->master_pid;
	my $socks = sockets_of($t);
	is_deeply([map { scalar @$_ } @$socks], [1, 2],
		'one shared socket, one reuseport socket per worker');
	is(body_of($t), 'old', 'old serves');

	my @load = start_load($t);
	ok($_->wait_requests(2), 'load running') for @load;

	# downloads that the old workers will have to finish
	my @dl = map { start_download($t, $t->port($_)) } 0, 1;

	# a package upgrade replaces the binary and the config changes
	my $ino = install_binary($bin);
	$t->config(config_text('new'));
	like(readlink("/proc/$m/exe"), qr/ \(deleted\)$/,
		'the running master runs the replaced file');

	my $new = upgrade($t, $m);
	is(PortierTest::cmdline($new), "portier: master process $bin -c " . $t->conf_path,
		'USR2: the new master title');
	is((stat "/proc/$new/exe")[1], $ino,
		'USR2: the new master runs the file now at the path it was started from');
	unlike(readlink("/proc/$new/exe"), qr/deleted/, 'USR2: not the deleted one');
	is_deeply(sockets_of($t), $socks, 'USR2: the same listening sockets, no new one');
	my %held = map { $_ => 1 } PortierTest::socket_inodes_of($new);
	is(scalar(grep { $held{$_} } map { @$_ } @$socks), 3,
		'USR2: every socket crossed the exec, reuseport ones included');
	# On a reuseport socket the old and the new worker of a slot are both
	# woken for a connection and race for it. On the shared socket
	# (EPOLLEXCLUSIVE) the kernel wakes the first idle waiter, nearly
	# always an old worker: there the new workers are only seen to hold
	# the socket, and to serve alone after WINCH.
	ok(see_all($t, $t->port(1), 'old', 'new'), 'USR2: both masters serve (reuseport)');
	for my $w ($t->wait_workers(2, $new)) {
		my %h = map { $_ => 1 } PortierTest::socket_inodes_of($w);
		ok($h{ $socks->[0][0] }, "USR2: new worker $w holds the shared socket");
	}

	# the new master refuses to upgrade again while the old one runs:
	# that would overwrite <pid_file>.oldbin
	$t->signal('USR2', $new);
	ok($t->wait_log(qr/upgrade refused: the old master \(pid $m\) still runs/),
		'USR2 to the new master while the old runs: refused');
	is($t->read_pid($t->pid_file . '.oldbin'), $m, 'and .oldbin still names the old');
	is($t->read_pid, $new, 'and the pid file the new');

	my @old_workers = $t->wait_workers(2, $m);
	$t->signal('WINCH', $m);
	ok(PortierTest::wait_for(sub {
		!grep { PortierTest::alive($_)
			&& PortierTest::cmdline($_) !~ /shutting down/ } @old_workers }),
		'WINCH: the old workers shut down');
	ok(PortierTest::alive($old_workers[0]) || PortierTest::alive($old_workers[1]),
		'WINCH: an old worker is still busy');
	finish_download($_, 'WINCH') for @dl;
	ok(!grep({ !PortierTest::wait_exit($_) } @old_workers),
		'WINCH: the old workers exit');
	ok(PortierTest::alive($m), 'WINCH: the old master stays');
	is_deeply(bodies($t, $_, 10), { new => 10 }, "WINCH: only the new serve (port $_)")
		for $t->port(0), $t->port(1);
	ok($_->wait_requests(4), 'load running') for @load;

	$t->signal('QUIT', $m);
	ok(PortierTest::wait_for(sub { waitpid($m, WNOHANG) == $m }),
		'QUIT: the old master exits');
	is($? >> 8, 0, 'QUIT: exit status 0');
	$t->{pid} = undef unless PortierTest::alive($m);
	is($t->read_pid, $new, 'QUIT: the pid file names the new master');
	ok(!-e $t->pid_file . '.oldbin', 'QUIT: <pid_file>.oldbin removed');
	is_deeply(sockets_of($t), $socks, 'QUIT: the same listening sockets');
	ok($_->wait_requests(6), 'load running') for @load;
	my $sum = stop_load('USR2, WINCH, QUIT', @load);
	ok($sum->{bodies}{old} && $sum->{bodies}{new}, 'the load saw both binaries');

	is(body_of($t, $t->port(1)), 'new', 'the new master serves alone');
	is(unix_body($t), 'new', 'also on the unix socket');
	$t->signal('QUIT', $new);
	ok(PortierTest::wait_exit($new), 'the new master quits');
	ok(!-e $t->pid_file, 'and removes the pid file');
	ok(!-e $t->dir . '/s.sock', 'and the unix socket file, being the last');
}

# ---- rollback: USR2, WINCH old, HUP old, QUIT new ---------------------------

{
	my $t = PortierTest->new;
	$t->config(config_text('old'))->run(workers => 2);
	my $m = $t->master_pid;
	my $socks = sockets_of($t);
	my @load = start_load($t);
	ok($_->wait_requests(2), 'load running') for @load;

	$t->config(config_text('new'));
	my $new = upgrade($t, $m);
	my @old_workers = $t->wait_workers(2, $m);
	$t->signal('WINCH', $m);
	ok(!grep({ !PortierTest::wait_exit($_) } @old_workers),
		'rollback: WINCH: the old workers exit');
	ok(see_all($t, $t->port(0), 'new'), 'rollback: the new serve');
	# downloads that the new workers will have to finish
	my @dl = map { start_download($t, $t->port($_)) } 0, 1;

	# the new binary misbehaves: roll back
	$t->signal('HUP', $m);
	my @back = $t->wait_workers(2, $m);
	is(scalar @back, 2, 'rollback: HUP: the old master starts workers again');
	ok(!grep({ my $b = $_; grep { $_ == $b } @old_workers } @back),
		'rollback: new processes');
	ok(see_all($t, $t->port(1), 'old', 'new'), 'rollback: with the old config');
	ok($_->wait_requests(4), 'load running') for @load;

	my @new_workers = $t->wait_workers(2, $new);
	$t->signal('QUIT', $new);
	ok(PortierTest::alive($new_workers[0]) || PortierTest::alive($new_workers[1]),
		'rollback: QUIT: a new worker is still busy');
	finish_download($_, 'rollback') for @dl;
	ok(PortierTest::wait_exit($new), 'rollback: QUIT: the new master exits');
	ok(!grep({ !PortierTest::wait_exit($_) } @new_workers), 'with its workers');
	ok(PortierTest::wait_for(sub { ($t->read_pid // 0) == $m }),
		'rollback: the pid file names the old master again');
	ok(!-e $t->pid_file . '.oldbin', 'rollback: <pid_file>.oldbin renamed back');
	ok($t->log_has(qr/new binary \(pid $new\) exited with code 0; restoring the pid file/),
		'rollback: logged');
	is_deeply(bodies($t, $_, 10), { old => 10 }, "rollback: only the old serve (port $_)")
		for $t->port(0), $t->port(1);
	is_deeply(sockets_of($t), $socks, 'rollback: the same listening sockets');
	ok(-S $t->dir . '/s.sock', 'rollback: the new master left the unix socket file');
	is(unix_body($t), 'old', 'rollback: the old master serves on the unix socket');
	ok($_->wait_requests(6), 'load running') for @load;
	stop_load('rollback', @load);

	# a pid file restored is a working one
	my ($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'quit');
	is($rc, 0, 'rollback: -s quit finds the old master');
	ok(PortierTest::wait_for(sub { waitpid($m, WNOHANG) == $m }), 'which exits');
	$t->{pid} = undef unless PortierTest::alive($m);
	ok(!-e $t->pid_file, 'and removes the pid file');
}

# ---- only the listening sockets cross the exec -----------------------------

{
	my $t = PortierTest->new;
	$t->config(<<'EOF')->run;
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  access_log = "%%DIR%%/access.log";
  locations = ( { path = "/"; return = "200 x"; } ); } );
EOF
	my $m = $t->master_pid;
	# a reopen replaces the log descriptors in place
	$t->signal('USR1');
	ok($t->wait_log(qr/reopening logs/), 'USR1');
	$t->signal('USR2');
	my $new;
	ok(PortierTest::wait_for(sub {
		$new = $t->read_pid;
		return $new && $new != $m && $t->worker_pids($new);
	}), 'USR2: a new master');
	$t->also_stop($new);
	my $count = sub {
		my ($file) = @_;
		return scalar grep { (readlink($_) // '') eq $t->dir . "/$file" }
			glob "/proc/$new/fd/*";
	};
	is($count->('error.log'), 1, 'the new master has its own error log only');
	is($count->('access.log'), 1,
		'the new master has its own access log only');
	$t->signal('QUIT', $new);
	ok(PortierTest::wait_exit($new), 'the new master quits');
	ok(PortierTest::wait_for(sub { ($t->read_pid // 0) == $m }),
		'the pid file is the old master\'s again');
	$t->stop;
}

# ---- a new binary that fails to start -----------------------------------------

{
	my $t = PortierTest->new;
	$t->config(config_text('old'))->run(workers => 2);
	my $m = $t->master_pid;
	# the new master reads the config again: a broken one stops it
	$t->write_file('portier.conf', "worker_processes = 2;\nbroken = ;\n");
	$t->signal('USR2');
	ok($t->wait_log(qr/new binary \(pid \d+\) exited with code 1; restoring the pid file/),
		'USR2 with a broken config: the new master exits');
	is($t->read_pid, $m, 'the pid file names the old master again');
	ok(!-e $t->pid_file . '.oldbin', 'no .oldbin left');
	is(body_of($t), 'old', 'the old master serves on');
	is(scalar(() = $t->wait_workers(2)), 2, 'with its workers');
	$t->stop;
}

done_testing;
