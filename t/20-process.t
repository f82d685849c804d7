#!/usr/bin/perl
# The process model (DESIGN.md section 1, portier(8)): the process tree and
# its titles, worker_processes "auto", privileges, respawning a killed
# worker and throttling a crash loop, a worker that cannot start, graceful
# (QUIT) and fast (TERM) shutdown with a download in flight, the
# worker_connections bound, and per-worker reuseport sockets.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Cwd ();
use Digest::MD5 qw(md5_hex);
use IO::Select;
use POSIX qw(:sys_wait_h);
use Socket qw(:all);
use Time::HiRes qw(time sleep);
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $bin = PortierTest::binary();
$bin = Cwd::getcwd() . "/$bin" unless $bin =~ m{^/};
my $ROOT = $> == 0;

sub conf_ping {
	my ($extra) = @_;
	return ($extra // '') . <<'EOF';
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = (
    { path = "= /ping"; return = "200 pong"; },
    { path = "/"; root = "%%DIR%%/www"; }
  ); } );
EOF
}

# Client connections a worker holds: its sockets that are not listening.
sub nconns {
	my ($pid) = @_;
	my %ls;
	open my $fh, '<', '/proc/net/tcp' or die;
	while (<$fh>) {
		my @f = split ' ';
		$ls{ $f[9] } = 1 if @f > 9 && $f[3] eq '0A';
	}
	return scalar grep { !$ls{$_} } PortierTest::socket_inodes_of($pid);
}

sub ping_ok {
	my ($t) = @_;
	my $r = $t->get('/ping') // return 0;
	return ($r->{body} // '') eq 'pong';
}

# ---- the process tree and titles -------------------------------------------

{
	my $t = PortierTest->new;
	$t->config(conf_ping("worker_processes = 3;\n"))->run(workers => 3);
	my $m = $t->master_pid;
	is(PortierTest::cmdline($m),
		"portier: master process $bin -c " . $t->conf_path,
		'master title: "portier: master process", the binary, the args');
	my @kids = PortierTest::children($m);
	my @w = $t->wait_workers(3);
	is(scalar @w, 3, 'three workers');
	is_deeply([sort { $a <=> $b } @kids], [sort { $a <=> $b } @w],
		'the master has no other children');
	is(PortierTest::cmdline($_), 'portier: worker process',
		"worker $_ title") for @w;
	is(PortierTest::ppid_of($_), $m, "worker $_ is the master's child")
		for @w;
	is($t->read_pid, $m, 'pid file holds the master');
	ok(ping_ok($t), 'serves');

	SKIP: {
		skip 'workers drop privileges only when started as root', 4
			unless $ROOT;
		my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
		is_deeply([PortierTest::uids_of($m)], [0, 0, 0, 0],
			'master keeps root');
		is_deeply([PortierTest::uids_of($w[0])], [($uid) x 4],
			'worker runs as nobody (real, effective, saved, fs)');
		open my $fh, '<', "/proc/$w[0]/status" or die;
		my ($g) = grep { /^Gid:/ } <$fh>;
		like($g, qr/^Gid:\s+$gid\s+$gid\s+$gid\s+$gid\s*$/,
			"worker's group is nobody's");
		# a worker must not be able to get root back
		ok(!grep({ $_ == 0 } PortierTest::uids_of($w[1])),
			'no uid 0 left in a worker');
	}
	$t->stop;
	is($t->{exit_status}, 0, 'QUIT: master exits 0');
}

# ---- worker_processes "auto" ---------------------------------------------

{
	my $ncpu = `getconf _NPROCESSORS_ONLN 2>/dev/null` || 0;
	chomp $ncpu;
	my $t = PortierTest->new;
	$t->config(conf_ping("worker_processes = \"auto\";\n"))
		->run(workers => $ncpu || 1);
	my @w = $t->wait_workers($ncpu);
	is(scalar @w, $ncpu, "worker_processes \"auto\": $ncpu workers (one per CPU)");
	$t->stop;
}

# ---- a killed worker is respawned; a crash loop is throttled ----------------

{
	my $t = PortierTest->new;
	$t->write_file('www/index.html', "x\n");
	$t->config(conf_ping())->run;
	my ($w0) = $t->wait_workers(1);

	# Kill the worker each time a new one appears. A worker that dies
	# within 2 s of its start counts as crashing, and the wait before the
	# next start doubles each time (1 s, 2 s, 4 s...; portier(8)).
	my $victim = $w0;
	my @delays;
	for my $round (1 .. 3) {
		my $t0 = time();
		kill 'KILL', $victim;
		my $new;
		PortierTest::wait_for(sub {
			($new) = grep { $_ != $victim } $t->wait_workers(1, undef, 0.05);
			return $new;
		}, 15);
		ok($new, "round $round: a new worker appears") or last;
		my $gap = time() - $t0;
		ok(ping_ok($t), "round $round: the new worker serves");
		like($t->read_file('error.log'),
			qr/worker 0 \(pid $victim\) exited on signal 9/,
			"round $round: the death is logged with its signal");
		my ($n, $ms) = $t->read_file('error.log')
			=~ /.*worker 0 keeps dying \((\d+) in a row\); respawning in (\d+) ms/s;
		# the first victim may have been older than 2 s: no delay then
		my $want = $round == 1 && !defined $n ? 0 : ($ms // -1);
		ok($round == 1 || $want > 0, "round $round: the worker died young")
			or diag("log: " . $t->read_file('error.log'));
		ok($gap >= $want / 1000 - 0.1,
			sprintf('round %d: respawned after %.2f s (backoff %d ms)',
				$round, $gap, $want));
		push @delays, $want;
		$victim = $new;
	}
	ok($delays[2] == 2 * $delays[1] && $delays[1] >= 1000,
		"the backoff doubles: @delays ms");
	my $starts = () = $t->read_file('error.log') =~ /started worker 0/g;
	is($starts, 4, 'no fork storm: one start per death');
	$t->stop;
}

# ---- a worker that cannot start is not respawned -----------------------------

{
	my $t = PortierTest->new;
	# a descriptor limit below the descriptors a worker inherits (the
	# listening sockets): its event loop can not be made, it exits 2 at
	# once. (A limit the kernel refuses is refused by the config check.)
	my $socks = join ', ', map { "\"unix:%%DIR%%/s$_.sock\"" } 1 .. 20;
	$t->config(<<"EOF")->run(workers => 0, no_port => 1);
worker_rlimit_nofile = 16;
servers = ( { listen = [ $socks ];
  locations = ( { path = "/"; return = "200 a"; } ); } );
EOF
	my $m = $t->master_pid;
	ok($t->wait_log(qr/worker 0 failed to start; not respawning/),
		'a worker that cannot start is logged');
	ok($t->log_has(qr/event loop: Too many open files/), 'with the cause');
	# nothing more happens: no respawn within the backoff the crash
	# throttling would have used
	ok(!PortierTest::wait_for(sub { $t->worker_pids }, 1.5),
		'and not respawned');
	my $starts = () = $t->read_file('error.log') =~ /started worker 0/g;
	is($starts, 1, 'started once only');
	ok(PortierTest::alive($m), 'the master keeps running');
	# fixed by a reload
	$t->config(conf_ping());
	$t->signal('HUP');
	ok(scalar $t->wait_workers(1), 'HUP with a fixed config starts a worker');
	ok(PortierTest::wait_for(sub { ping_ok($t) }), 'which serves');
	$t->stop;
}

# ---- graceful (QUIT) and fast (TERM) shutdown with a download in flight ------

my $SIZE = PortierTest::inflight_size();
my $big = PortierTest::test_data($SIZE);

{
	my $t = PortierTest->new;
	$t->write_file('www/big', $big);
	$t->config(conf_ping())->run;
	my $m = $t->master_pid;
	my ($w) = $t->wait_workers(1);

	my $s = $t->slow_get('/big');
	# an idle keep-alive connection and a connection that has not sent
	# its request yet
	my $idle = $t->connect_to;
	syswrite($idle, "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
	my $r1 = PortierTest::read_until($idle, sub { PortierTest::response_length($_[0]) });
	like($r1, qr/pong$/, 'keep-alive connection served');
	my $fresh = $t->connect_to;
	ok(PortierTest::wait_for(sub { nconns($w) == 3 }),
		'the worker accepted the three connections');
	my $buf = '';
	PortierTest::slow_read($s, \$buf, 1024 * 1024);
	ok(length($buf) >= 1024 * 1024, 'download under way');

	$t->signal('QUIT');
	# the idle keep-alive connection is closed at once
	is(PortierTest::next_event($idle, 5), 'eof',
		'QUIT: idle keep-alive connection closed at once');
	ok(PortierTest::wait_for(sub { PortierTest::cmdline($w) =~ /shutting down/ }),
		'QUIT: the worker says it is shutting down');
	# a connection accepted before QUIT still gets its request served,
	# and is told that the connection ends
	syswrite($fresh, "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
	my $r2 = PortierTest::parse_response(PortierTest::read_until($fresh,
		sub { PortierTest::response_length($_[0]) }));
	is($r2->{body}, 'pong', 'QUIT: a connection accepted before is served');
	is($r2->{headers}{connection}, 'close',
		'QUIT: its response carries "Connection: close"');

	# (the kernel buffers up to 4 MB of it: the worker still has some)
	ok(PortierTest::alive($w) && PortierTest::alive($m),
		'QUIT: worker and master wait for the download');
	ok(PortierTest::wait_for(sub { !PortierTest::can_connect($t->port(0)) }),
		'QUIT: new connections are refused');

	my $t0 = time();
	PortierTest::slow_read($s, \$buf, $SIZE + 1024, 0);
	my ($head, $body) = PortierTest::split_response($buf);
	like($head, qr{^HTTP/1\.1 200 }, 'QUIT: download status 200');
	is(length($body), $SIZE, 'QUIT: the download completes');
	ok(md5_hex($body) eq md5_hex($big), 'QUIT: byte for byte');
	# after its last response the connection is closed, the worker and
	# then the master exit
	is(PortierTest::next_event($s, 5), 'eof',
		'QUIT: the connection is closed after the download');
	ok(PortierTest::wait_for(sub { waitpid($m, WNOHANG) == $m }, 10),
		'QUIT: the master exits once the download is done');
	is($? >> 8, 0, 'QUIT: exit status 0');
	$t->{pid} = undef unless PortierTest::alive($m);
	ok(!-e $t->pid_file, 'QUIT: pid file removed');

	# TERM: the same download is cut at once
	$t->run;
	$m = $t->master_pid;
	$s = $t->slow_get('/big');
	$buf = '';
	PortierTest::slow_read($s, \$buf, 512 * 1024);
	$t0 = time();
	$t->signal('TERM');
	ok(PortierTest::wait_for(sub { waitpid($m, WNOHANG) == $m }, 3),
		'TERM: the master exits at once');
	my $took = time() - $t0;
	ok($took < 2, sprintf('TERM: fast (%.2f s)', $took));
	$t->{pid} = undef unless PortierTest::alive($m);
	PortierTest::slow_read($s, \$buf, $SIZE + 1024, 0);
	($head, $body) = PortierTest::split_response($buf);
	ok(length($body) < $SIZE, 'TERM: the download is cut');
	ok($t->log_has(qr/fast shutdown/), 'TERM: fast shutdown logged');
}

# ---- worker_connections ------------------------------------------------------

{
	my $t = PortierTest->new;
	$t->config(conf_ping("worker_connections = 4;\n"))->run;
	my ($w) = $t->wait_workers(1);
	# four connections without a request fill the worker
	my @held = map { $t->connect_to } 1 .. 4;
	ok(PortierTest::wait_for(sub { nconns($w) == 4 }),
		'worker_connections = 4: four connections accepted');
	# two more wait in the listen backlog: connected, not served
	my @extra = map { $t->connect_to } 1 .. 2;
	ok(@extra == 2 && $extra[0] && $extra[1], 'more connections are not refused');
	syswrite($_, "GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		for @extra;
	my $early = PortierTest::read_until($extra[0], sub { length $_[0] }, 1)
		. PortierTest::read_until($extra[1], sub { length $_[0] }, 0.2);
	is($early, '', 'they are not served while the worker is full');
	is(nconns($w), 4, 'the worker holds no more than four');
	ok($t->log_has(qr/4 worker_connections are not enough/), 'logged');
	# one held connection closes: one extra is taken and served
	close shift @held;
	my $got = 0;
	my $sel = IO::Select->new(@extra);
	my %resp;
	my $end = time() + 5;
	while (keys %resp < 1 && time() < $end) {
		for my $s ($sel->can_read(0.5)) {
			$resp{"$s"} = PortierTest::read_until($s, undef, 2);
		}
	}
	is(scalar keys %resp, 1, 'one slot frees: one waiting connection is served');
	like((values %resp)[0] // '', qr/pong$/, 'with its response');
	close shift @held;
	$end = time() + 5;
	while (keys %resp < 2 && time() < $end) {
		for my $s ($sel->can_read(0.5)) {
			$resp{"$s"} //= PortierTest::read_until($s, undef, 2);
		}
	}
	is(scalar keys %resp, 2, 'another frees: the other is served');
	close $_ for @held, @extra;
	$t->stop;
}

{
	# idle keep-alive connections are reclaimed, oldest first
	my $t = PortierTest->new;
	$t->config(conf_ping("worker_connections = 4;\n"))->run;
	my @ka;
	for my $i (1 .. 4) {
		my $s = $t->connect_to;
		syswrite($s, "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
		like(PortierTest::read_until($s, sub { PortierTest::response_length($_[0]) }),
			qr/pong$/, "keep-alive connection $i served");
		push @ka, $s;
	}
	my $r = $t->get('/ping', timeout => 3);
	is($r && $r->{body}, 'pong', 'a fifth connection is served at once');
	is(PortierTest::next_event($ka[0], 3), 'eof',
		'the oldest idle connection was closed for it');
	my $sel = IO::Select->new(@ka[1 .. 3]);
	is(scalar(() = $sel->can_read(0.2)), 0, 'the others stay open');
	my $n = () = $t->read_file('error.log')
		=~ /closing idle keep-alive connection/g;
	is($n, 1, 'one idle connection closed for one new');
	syswrite($ka[3], "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
	like(PortierTest::read_until($ka[3], sub { PortierTest::response_length($_[0]) }),
		qr/pong$/, 'the newest still serves');
	close $_ for @ka;
	$t->stop;
}

# ---- reuseport: one socket per worker -----------------------------------------

{
	my $t = PortierTest->new;
	$t->config(<<'EOF')->run(workers => 2);
worker_processes = 2;
servers = ( { listen = "127.0.0.1:%%PORT_0%% reuseport";
  locations = ( { path = "= /ping"; return = "200 pong"; } ); } );
EOF
	my $m = $t->master_pid;
	my @ls = PortierTest::listen_inodes($t->port(0));
	is(scalar @ls, 2, 'reuseport: two sockets listen on the port');
	my %in_master = map { $_ => 1 } PortierTest::socket_inodes_of($m);
	is(scalar(grep { $in_master{$_} } @ls), 2, 'the master holds both');
	my @w = $t->wait_workers(2);
	my @own = map { my %h = map { $_ => 1 } PortierTest::socket_inodes_of($_);
		[grep { $h{$_} } @ls] } @w;
	is_deeply([map { scalar @$_ } @own], [1, 1], 'each worker holds one');
	isnt($own[0][0], $own[1][0], 'not the same one');
	my $ok = grep { ping_ok($t) } 1 .. 40;
	is($ok, 40, 'reuseport: requests succeed');

	# a worker killed: its socket keeps its connections in the backlog
	# until the respawned worker takes them over
	kill 'KILL', $w[0];
	my @r = map { $t->get('/ping', timeout => 8) } 1 .. 20;
	is(scalar(grep { $_ && $_->{body} eq 'pong' } @r), 20,
		'reuseport: no request lost while a worker is respawned');
	my @w2 = $t->wait_workers(2);
	is(scalar @w2, 2, 'reuseport: the worker was respawned');
	is_deeply([PortierTest::listen_inodes($t->port(0))], \@ls,
		'reuseport: the same sockets');
	$t->stop;
}

done_testing;
