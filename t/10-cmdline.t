#!/usr/bin/perl
# The command line (portier(8)): -t and -T on good and bad configs, -V, -h,
# bad options, -s against a running master and without one, -p, -F, and
# the daemon mode.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use POSIX qw(:sys_wait_h);
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $bin = PortierTest::binary();

# ---- -t: good and bad configs ---------------------------------------------

my $t = PortierTest->new;
my $dir = $t->dir;
$t->write_file('www/index.html', "index\n");
my $good = <<'EOF';
worker_processes = 1;
@include "conf.d/log.conf"
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    locations = ( { path = "/"; return = "200 ${PT_TEST_GREETING:-hi}"; } );
  }
);
EOF
$t->write_file('conf.d/log.conf', "log_level = \"info\";\n");
$t->write_file('good.conf', $t->expand($good));

my ($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/good.conf");
is($rc, 0, '-t good config: exit 0');
like($err, qr{configuration file \Q$dir\E/good\.conf test is successful},
	'-t good config: says so on stderr');
is($out, '', '-t prints nothing on stdout');

# Each bad config: text, file with the error, line, message.
my @bad = (
	[ "worker_processes = 1;\nservers = ( { listen = \"127.0.0.1:1\";\n"
	  . "  locations = ( { path = \"/\";\n    retrn = \"200 x\"; } ); } );\n",
	  'bad1.conf', 4, qr/unknown setting "retrn"/, 'unknown setting' ],
	[ "worker_processes = 1;\nworker_connections = \"many\";\n"
	  . "servers = ( { listen = \"127.0.0.1:1\";\n"
	  . "  locations = ( { path = \"/\"; return = \"200 x\"; } ); } );\n",
	  'bad2.conf', 2, qr/"worker_connections" expects an integer/,
	  'wrong type' ],
	[ "worker_processes = 1;\n\nservers = ( { listen = \"127.0.0.1:99999\";\n"
	  . "  locations = ( { path = \"/\"; return = \"200 x\"; } ); } );\n",
	  'bad3.conf', 3, qr/"listen": invalid port/, 'invalid port' ],
	[ "worker_processes = 1;\nservers = ( { listen = \"127.0.0.1:1\";\n"
	  . "  locations = ( { path = \"/\"; return = \"200 x\" } ) } );\n"
	  . "log_level = \"info\"\nbroken = ;\n",
	  'bad4.conf', 5, qr/syntax error/, 'syntax error' ],
);
for my $b (@bad) {
	my ($text, $file, $line, $msg, $name) = @$b;
	$t->write_file($file, $text);
	($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/$file");
	is($rc, 1, "-t $name: exit 1");
	like($err, qr{^portier: \Q$dir/$file\E:$line: $msg}m,
		"-t $name: $file:$line on stderr");
	like($err, qr/test failed/, "-t $name: says it failed");
}

# an error in an included file names that file and its line
$t->write_file('inc/bad.conf', "log_level = \"info\";\nworker_connectons = 5;\n");
$t->write_file('incl.conf', "worker_processes = 1;\n\@include \"inc/bad.conf\"\n"
	. "servers = ( { listen = \"127.0.0.1:1\";\n"
	. "  locations = ( { path = \"/\"; return = \"200 x\"; } ); } );\n");
($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/incl.conf");
is($rc, 1, '-t error in an included file: exit 1');
like($err, qr{^portier: \S*inc/bad\.conf:2: unknown setting "worker_connectons"}m,
	'-t error in an included file: the included file and its line');
like($err, qr{^portier: \Q$dir\E/inc/bad\.conf:2:}m,
	'-t error in an included file: its full path');

# an unset environment variable without default
$t->write_file('env.conf', "worker_processes = 1;\nservers = ( {\n"
	. "  listen = \"127.0.0.1:1\";\n"
	. "  locations = ( { path = \"/\"; return = \"200 \${PT_TEST_UNSET_VAR}\"; } ); } );\n");
delete $ENV{PT_TEST_UNSET_VAR};
($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/env.conf");
is($rc, 1, '-t unset environment variable: exit 1');
like($err, qr{\Q$dir\E/env\.conf:4: "\$\{PT_TEST_UNSET_VAR\}": environment variable not set},
	'-t unset environment variable: file:line');

($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/missing.conf");
is($rc, 1, '-t missing file: exit 1');
like($err, qr{\Q$dir\E/missing\.conf: cannot read}, '-t missing file: says so');

# ---- -T ---------------------------------------------------------------------

{
	local $ENV{PT_TEST_GREETING} = 'hello-from-env';
	($rc, $out, $err) = $t->run_cmd('-T', '-c', "$dir/good.conf");
}
is($rc, 0, '-T good config: exit 0');
like($out, qr/^# effective configuration of \Q$dir\E\/good\.conf$/m, '-T header');
like($out, qr/return = "200 hello-from-env";/, '-T expands environment variables');
like($out, qr/log_level = "info";/, '-T inlines included files');
unlike($out, qr/\@include/, '-T leaves no @include');
like($err, qr/test is successful/, '-T validates too');
# what -T prints is itself a valid config
$t->write_file('dumped.conf', $out);
($rc, undef, $err) = $t->run_cmd('-t', '-c', "$dir/dumped.conf");
is($rc, 0, '-T output is a valid config') or diag($err);

($rc, $out, $err) = $t->run_cmd('-T', '-c', "$dir/bad1.conf");
is($rc, 1, '-T bad config: exit 1');
is($out, '', '-T bad config: prints no config');
like($err, qr{bad1\.conf:4: unknown setting}, '-T bad config: the error');

# ---- -V, -h, bad options ------------------------------------------------

($rc, $out, $err) = $t->run_cmd('-V');
is($rc, 0, '-V: exit 0');
like($out, qr/^portier version \d+\.\d+/m, '-V: version');
like($out, qr/^configure arguments:/m, '-V: configure arguments');
like($out, qr/^modules: core http_core http_log\b/m, '-V: modules');

($rc, $out, $err) = $t->run_cmd('-h');
is($rc, 0, '-h: exit 0');
like($out, qr/^usage: portier \[-c file\] \[-p prefix\] \[-t \| -T\] \[-s reload\|stop\|quit\|reopen\] \[-F\] \[-V\] \[-h\]/m,
	'-h: usage on stdout');

($rc, $out, $err) = $t->run_cmd('-Z');
is($rc, 1, 'unknown option: exit 1');
like($err, qr/^usage: portier/m, 'unknown option: usage on stderr');
is($out, '', 'unknown option: nothing on stdout');

($rc, $out, $err) = $t->run_cmd('-c');
is($rc, 1, 'option without its argument: exit 1');

($rc, $out, $err) = $t->run_cmd('-c', "$dir/good.conf", 'extra');
is($rc, 1, 'extra argument: exit 1');
like($err, qr/^usage: portier/m, 'extra argument: usage');

($rc, $out, $err) = $t->run_cmd('-c', "$dir/good.conf", '-s', 'restart');
is($rc, 1, '-s unknown signal: exit 1');
like($err, qr/invalid signal "restart"/, '-s unknown signal: says so');

# ---- -s without a running server ---------------------------------------

$t->config(<<'EOF');
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 one"; } ); } );
EOF
unlink $t->pid_file;
($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'reload');
is($rc, 1, '-s with no pid file: exit 1');
like($err, qr{cannot read pid file \Q@{[$t->pid_file]}\E: No such file},
	'-s with no pid file: names the pid file and the reason');

# a stale pid file: its process is gone
my $dead = fork // die;
if ($dead == 0) { POSIX::_exit(0) }
waitpid($dead, 0);
$t->write_file('portier.pid', "$dead\n");
($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'quit');
is($rc, 1, '-s with a stale pid file: exit 1');
like($err, qr/kill\($dead, quit\) failed: No such process/,
	'-s with a stale pid file: says the process is gone');
unlink $t->pid_file;

# ---- -s against a running master -----------------------------------------

$t->run;
my $master = $t->master_pid;
is($t->get('/')->{body}, 'one', 'running');

# reopen
rename $t->error_log, $t->error_log . '.1' or die;
($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'reopen');
is($rc, 0, '-s reopen: exit 0') or diag($err);
ok(PortierTest::wait_for(sub { -e $t->error_log }),
	'-s reopen: the error log is created again');
ok($t->log_has(qr/reopening logs/, 'error.log.1'),
	'-s reopen: the master got USR1');

# reload (its log lines go to the reopened log)
$t->config(<<'EOT');
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 two"; } ); } );
EOT
($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'reload');
is($rc, 0, '-s reload: exit 0') or diag($err);
ok(PortierTest::wait_for(sub { ($t->get('/') // {})->{body} eq 'two' }),
	'-s reload: the new config serves');
ok($t->log_has(qr/reloading/), '-s reload: logged in the reopened log');

# quit: graceful, the master exits 0 and removes its pid file
($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'quit');
is($rc, 0, '-s quit: exit 0') or diag($err);
ok(PortierTest::wait_for(sub { waitpid($master, WNOHANG) == $master }),
	'-s quit: the master exits');
is($? >> 8, 0, '-s quit: exit status 0');
$t->{pid} = undef unless PortierTest::alive($master);
ok(!-e $t->pid_file, '-s quit: pid file removed');
ok($t->log_has(qr/graceful shutdown/), '-s quit: graceful');

# stop: fast
$t->run;
$master = $t->master_pid;
($rc, $out, $err) = $t->run_cmd('-c', $t->conf_path, '-s', 'stop');
is($rc, 0, '-s stop: exit 0') or diag($err);
ok(PortierTest::wait_for(sub { waitpid($master, WNOHANG) == $master }, 5),
	'-s stop: the master exits');
$t->{pid} = undef unless PortierTest::alive($master);
ok($t->log_has(qr/fast shutdown/), '-s stop: fast shutdown');
ok(!-e $t->pid_file, '-s stop: pid file removed');

# ---- -p prefix ----------------------------------------------------------------

my $p = PortierTest->new;
my $pd = $p->dir;
$p->write_file('html/index.html', "from the prefix\n");
mkdir "$pd/logs";
# relative runtime paths, resolved against -p (the test runs elsewhere)
$p->config(<<'EOF');
pid_file = "portier.pid";
error_log = "logs/error.log";
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; root = "html"; } ); } );
EOF
($rc, $out, $err) = $p->run_cmd('-T', '-c', $p->conf_path, '-p', $pd);
is($rc, 0, '-p: config valid');
$p->run(args => ['-p', $pd]);
is($p->read_pid, $p->master_pid, '-p: relative pid_file under the prefix');
ok(-s "$pd/logs/error.log", '-p: relative error_log under the prefix');
like($p->read_file('logs/error.log'), qr/started/, '-p: error log written');
my $r = $p->get('/');
is($r->{status}, 200, '-p: relative root under the prefix');
is($r->{body}, "from the prefix\n", '-p: the file from the prefix');
$p->stop;

# ---- -F -------------------------------------------------------------------------

my $f = PortierTest->new;
my $fd = $f->dir;
# daemon = true and no pid_file: -F overrides the one and writes no pid file
$f->write_file('portier.conf', $f->expand(<<'EOF'));
daemon = true;
worker_processes = 1;
log_level = "info";
error_log = "%%DIR%%/error.log";
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 fg"; } ); } );
EOF
($rc, $out, $err) = $f->run_cmd('-c', $f->conf_path, '-s', 'reload');
my ($default_pid) = $err =~ /cannot read pid file (\S+):/;
$f->run(args => ['-F'], no_pid => 1);
my $fm = $f->master_pid;
is(waitpid($fm, WNOHANG), 0, '-F: the master stays our child (no daemon)');
is($f->get('/')->{body}, 'fg', '-F: serves');
ok(PortierTest::wait_for(sub { ($f->read_file('stderr.log') // '') =~ /master: portier \S+ started \(pid $fm\)/ }),
	'-F: the error log goes to stderr');
ok(!-e "$fd/error.log", '-F: the configured error_log is not used');
ok(defined $default_pid, "default pid file: " . ($default_pid // '?'));
ok(!defined $default_pid || !-e $default_pid
	|| ($f->read_file($default_pid) // '') !~ /^$fm$/m,
	'-F: no pid file without pid_file');
$f->stop;
is($f->{exit_status}, 0, '-F: QUIT exits 0');

# -F with pid_file set: written, and removed at exit
$f->write_file('portier.conf', $f->expand(<<'EOF'));
worker_processes = 1;
pid_file = "%%DIR%%/fg.pid";
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 fg"; } ); } );
EOF
$f->run(args => ['-F'], no_pid => 1);
ok(PortierTest::wait_for(sub { ($f->read_pid("$fd/fg.pid") // 0) == $f->master_pid }),
	'-F with pid_file: pid file written');
$f->stop;
ok(!-e "$fd/fg.pid", '-F with pid_file: removed at exit');

# ---- daemon mode --------------------------------------------------------------

my $d = PortierTest->new;
$d->config(<<'EOF');
daemon = true;
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 daemon"; } ); } );
EOF
($rc, $out, $err) = $d->run_cmd('-c', $d->conf_path);
is($rc, 0, 'daemon: the starting process exits 0') or diag($err);
ok(PortierTest::wait_for(sub { $d->read_pid }), 'daemon: pid file written');
my $dm = $d->read_pid;
$d->also_stop($dm);
ok(PortierTest::wait_for(sub { $d->worker_pids($dm) == 1 }), 'daemon: worker runs');
isnt(PortierTest::ppid_of($dm), $$, 'daemon: detached from its starter');
is((PortierTest::proc_stat($dm))[3], $dm, 'daemon: leads its own session');
is($d->get('/')->{body}, 'daemon', 'daemon: serves');
($rc, $out, $err) = $d->run_cmd('-c', $d->conf_path, '-s', 'quit');
is($rc, 0, 'daemon: -s quit');
ok(PortierTest::wait_exit($dm, 10), 'daemon: exits');
ok(!-e $d->pid_file, 'daemon: pid file removed');

done_testing;
