#!/usr/bin/perl
# Reload (HUP) and log reopening (USR1), portier(8): a changed config is
# applied and the old workers retire; a broken one is logged and the old
# one keeps serving; reloads under continuous load lose no request; USR1
# after logrotate's rename writes new files; buffered access log lines
# reach the file on USR1, reload and exit.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierLoad;
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $ROOT = $> == 0;

sub body_of {
	my ($t, $port) = @_;
	my $r = $t->get('/', port => $port, timeout => 3) // return '';
	return $r->{body} // '';
}

# ---- a changed config: text, ports, workers ---------------------------------

my $t = PortierTest->new;
$t->config(<<'EOF')->run(workers => 2);
worker_processes = 2;
servers = (
  { listen = [ "127.0.0.1:%%PORT_0%%", "127.0.0.1:%%PORT_2%%" ];
    locations = ( { path = "/"; return = "200 one"; } ); }
);
EOF
my @old = $t->wait_workers(2);
is(body_of($t), 'one', 'generation 1 serves');
is(body_of($t, $t->port(2)), 'one', 'on both its ports');
ok(!PortierTest::can_connect($t->port(1)), 'port 1 is not configured yet');

$t->config(<<'EOF');
worker_processes = 2;
servers = (
  { listen = [ "127.0.0.1:%%PORT_0%%", "127.0.0.1:%%PORT_1%%" ];
    locations = ( { path = "/"; return = "200 two"; } ); }
);
EOF
$t->signal('HUP');
ok(PortierTest::wait_for(sub { body_of($t) eq 'two' }),
	'HUP: the changed return text is served');
ok(PortierTest::wait_for(sub { body_of($t, $t->port(1)) eq 'two' }),
	'HUP: the new port accepts');
ok(PortierTest::wait_exit($_), "HUP: old worker $_ exits") for @old;
my @new = $t->wait_workers(2);
is(scalar @new, 2, 'HUP: two new workers');
ok(!grep({ my $n = $_; grep { $_ == $n } @old } @new), 'HUP: all of them new');
ok(PortierTest::wait_for(sub { !PortierTest::can_connect($t->port(2)) }),
	'HUP: the removed port is closed once the old workers are gone');
ok($t->log_has(qr/configuration generation 2 is live/), 'HUP: logged');
is(scalar(() = PortierTest::listen_inodes($t->port(0))), 1,
	'HUP: the kept port is the same single socket');

# ---- a broken config: logged with file:line, the old one keeps serving ----

my $conf = $t->conf_path;
my $good = $t->read_file('portier.conf');
(my $broken = $good) =~ s/return = "200 two";/return = "200 three"; retrun = 1;/;
$t->write_file('portier.conf', $broken);
my @lines = split /\n/, $broken;
my ($line) = grep { $lines[$_ - 1] =~ /retrun/ } 1 .. @lines;
$t->signal('HUP');
ok($t->wait_log(qr/reload failed: keeping the current configuration/),
	'HUP with a broken config: reload refused');
ok($t->log_has(qr/\Q$conf\E:$line: unknown setting "retrun"/),
	"HUP with a broken config: the error is logged with file:line ($line)");
is(body_of($t), 'two', 'HUP with a broken config: the old config serves');
is(body_of($t, $t->port(1)), 'two', 'on all its ports');
is_deeply([$t->wait_workers(2)], \@new, 'HUP with a broken config: same workers');

# a config that parses but can not be opened (a port already taken)
my $taken = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Listen => 1, ReuseAddr => 0) or die;
my $tport = $taken->sockport;
(my $unbindable = $good) =~ s/"127\.0\.0\.1:(\d+)" \]/"127.0.0.1:$1", "127.0.0.1:$tport" ]/;
$t->write_file('portier.conf', $unbindable);
my $fails = () = $t->read_file('error.log') =~ /reload failed/g;
$t->signal('HUP');
ok(PortierTest::wait_for(sub {
	(() = $t->read_file('error.log') =~ /reload failed/g) > $fails }),
	'HUP with a port that can not be bound: refused');
ok($t->log_has(qr/bind\(\) to 127\.0\.0\.1:$tport failed/), 'the cause is logged');
is(body_of($t), 'two', 'the old config still serves');
is(body_of($t, $t->port(1)), 'two', 'on all its ports');
is_deeply([$t->wait_workers(2)], \@new, 'same workers');
close $taken;

# pid_file moved by a reload: the new one is written, the old removed,
# and -s with the new config finds the master
my $m = $t->master_pid;
(my $moved = $good) =~ s{^pid_file = .*$}{pid_file = "@{[$t->dir]}/moved.pid";}m;
$t->write_file('portier.conf', $moved);
$t->signal('HUP');
ok(PortierTest::wait_for(sub { ($t->read_pid($t->dir . '/moved.pid') // 0) == $m }),
	'HUP with a new pid_file: written');
ok(!-e $t->pid_file, 'HUP with a new pid_file: the old one removed');
my ($rc, undef, $err) = $t->run_cmd('-c', $conf, '-s', 'quit');
is($rc, 0, 'HUP with a new pid_file: -s finds the master') or diag($err);
ok(PortierTest::wait_exit($m), 'which quits');
$t->{pid} = undef unless PortierTest::alive($m);
ok(!-e $t->dir . '/moved.pid', 'and removes the new pid file');

# ---- reloads under continuous load --------------------------------------------

$t = PortierTest->new;
my $conf_n = sub {
	my ($text) = @_;
	return <<"EOF";
worker_processes = 2;
keepalive_timeout = "2s";
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 $text"; },
                { path = "/big"; root = "%%DIR%%/www"; },
                { path = "/huge"; root = "%%DIR%%/www"; } ); } );
EOF
};
my $big = PortierTest::test_data(1 << 20);
$t->write_file('www/big', $big);
my $huge = PortierTest::test_data(PortierTest::inflight_size());
$t->write_file('www/huge', $huge);
$t->config($conf_n->('r0'))->run(workers => 2);
# quick requests on both kinds of connections, and a slow download that
# is nearly always in flight when the old workers are told to quit
my $load = PortierLoad->start(dir => $t->dir, port => $t->port(0),
	body => qr/^r\d$/, keepalive => 2, close => 2,
	slow => 1, slow_path => '/big', slow_body => $big);
ok($load->wait_requests(3), 'load running');
for my $i (1 .. 3) {
	my @w = $t->wait_workers(2);
	# and a download that an old worker has to finish
	my $dl = $t->slow_get('/huge');
	my $buf = '';
	PortierTest::slow_read($dl, \$buf, 512 * 1024);
	$t->config($conf_n->("r$i"));
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { body_of($t) eq "r$i" }),
		"reload $i under load: new config serves");
	ok(PortierTest::alive($w[0]) || PortierTest::alive($w[1]),
		"reload $i under load: an old worker is still busy");
	PortierTest::slow_read($dl, \$buf, length($huge) + 1024, 0);
	my ($head, $body) = PortierTest::split_response($buf);
	ok(length($body) == length($huge) && $body eq $huge,
		"reload $i under load: the download in flight completes")
		or diag("got " . length($body) . " bytes; head: $head");
	ok(!grep({ !PortierTest::wait_exit($_) } @w),
		"reload $i under load: old workers exit");
}
ok($load->wait_requests(5), 'load still running');
my $res = $load->stop;
is($res->{nfail}, 0, "reloads under load: no failed request ($res->{ok} ok, "
	. "$res->{retries} idle keep-alive retries)")
	or diag(join "\n", @{ $res->{failures} });
ok($res->{ok} > 200, 'reloads under load: enough requests made');
ok($res->{bodies}{'(download)'}, 'reloads under load: downloads done');
is(scalar(grep { $res->{bodies}{"r$_"} } 0 .. 3), 4,
	'reloads under load: every generation served');
$t->stop;

# ---- USR1 after logrotate's rename --------------------------------------------

$t = PortierTest->new;
$t->config(<<'EOF')->run(workers => 2);
worker_processes = 2;
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  access_log = "%%DIR%%/access.log";
  locations = ( { path = "/"; return = "200 ok"; } ); } );
EOF
my $n = 0;
my $req = sub { my $p = '/r' . ++$n; $t->get($p); return $p };
$req->() for 1 .. 4;
ok(PortierTest::wait_for(sub { ($t->read_file('access.log') // '') =~ m{GET /r4 } }),
	'access log written');
rename $t->dir . "/$_", $t->dir . "/$_.1" or die for qw(error.log access.log);
$t->signal('USR1');
ok(PortierTest::wait_for(sub { -e $t->dir . '/access.log' && -e $t->error_log }),
	'USR1: the master creates new files');
SKIP: {
	skip 'not root: files are ours', 2 unless $ROOT;
	my $nobody = (getpwnam('nobody'))[2];
	# (created, then given away: poll)
	ok(PortierTest::wait_for(sub { (stat $t->dir . '/access.log')[4] == $nobody }),
		'USR1: new access log owned by the worker user');
	ok(PortierTest::wait_for(sub { (stat $t->error_log)[4] == $nobody }),
		'USR1: new error log owned by the worker user');
}
# every worker reopens: requests land in the new file, whichever worker
# serves them
my $streak = 0;
ok(PortierTest::wait_for(sub {
	my $p = $req->();
	my $in = ($t->read_file('access.log') // '') =~ m{GET \Q$p\E };
	# a request logged before its worker reopened went to the old file
	$streak = $in ? $streak + 1 : 0;
	return $streak >= 10;
}), 'USR1: the workers write the new access log');
my %size = map { $_ => -s $t->dir . "/$_.1" } qw(error.log access.log);
my @p = map { $req->() } 1 .. 10;
ok(PortierTest::wait_for(sub {
	my $log = $t->read_file('access.log') // '';
	!grep { $log !~ m{GET \Q$_\E } } @p }), 'USR1: new requests go to the new file');
is(-s $t->dir . '/access.log.1', $size{'access.log'}, 'USR1: the old access log no longer grows');
like($t->read_file('error.log.1'), qr/reopening logs/, 'USR1: logged before the switch');
$t->signal('HUP');
ok($t->wait_log(qr/reloading/), 'USR1: the error log continues in the new file');
is(-s $t->dir . '/error.log.1', $size{'error.log'}, 'USR1: the old error log no longer grows');
$t->stop;

# ---- buffered access log lines are flushed on USR1, reload and exit ----------

$t = PortierTest->new;
$t->config(<<'EOF')->run;
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  access_log = { path = "%%DIR%%/buf.log"; buffer = "64k"; flush = "1h"; };
  locations = ( { path = "/"; return = "200 ok"; } ); } );
EOF
my $logged = sub { (($t->read_file('buf.log') // '') =~ m{GET \Q$_[0]\E }) ? 1 : 0 };
is($t->get('/b1')->{status}, 200, 'buffered: request served');
ok(!$logged->('/b1'), 'buffered: the line waits in the buffer');
$t->signal('USR1');
ok(PortierTest::wait_for(sub { $logged->('/b1') }), 'buffered: flushed by USR1');
$t->get('/b2');
ok(!$logged->('/b2'), 'buffered: the next line waits');
my ($w) = $t->wait_workers(1);
$t->signal('HUP');
ok(PortierTest::wait_for(sub { $logged->('/b2') }), 'buffered: flushed by a reload');
ok(PortierTest::wait_exit($w), 'buffered: by the retiring worker');
$t->get('/b3');
ok(!$logged->('/b3'), 'buffered: the next line waits');
$t->stop;
ok($logged->('/b3'), 'buffered: flushed at exit');
my $lines = () = ($t->read_file('buf.log') // '') =~ /\n/g;
is($lines, 3, 'buffered: each line once');

done_testing;
