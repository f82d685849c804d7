#!/usr/bin/perl
# The proxy and the process model: WebSocket through the Upgrade tunnel
# (text, binary, fragmented and control frames echoed, the close
# handshake, the tunnel's idle timeout from proxy_read_timeout), reloads
# (HUP) under continuous load through the proxy with no failed request,
# and the shared state of peers across a reload (a peer marked down stays
# down in the new workers when the new config keeps it).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use PortierBackend;
use PortierLoad;
use Test::More;
use Time::HiRes qw(time);

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;

sub servers {
	my (@b) = @_;
	return join(",\n    ", map { sprintf('{ address = "%s"; %s }',
		$_->[0]->addr, $_->[1] // '') } @b);
}

sub backend_of {
	my ($r) = @_;
	return 'none' unless $r;
	return $r->{headers}{'x-backend'} // "status $r->{status}";
}

# ---- WebSocket -------------------------------------------------------------------

my $wsb = PortierBackend->new(name => 'ws', dir => $t->dir);
$t->config(<<"EOF")->run;
upstreams = { ws = { servers = ( @{[ servers([$wsb]) ]} ); }; };
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = (
    { path = "/"; proxy_pass = "ws"; },
    { path = "/idle/"; proxy_pass = "ws"; proxy_read_timeout = "500ms"; }
  ); } );
EOF

sub ws { PortierBackend::ws_client(port => $t->port(0), path => $_[0]) }

{
	my $ws = ws('/ws');
	is($ws->{status}, 101, 'WebSocket: 101 through the proxy');
	ok($ws->{accept_ok}, 'WebSocket: the backend\'s Sec-WebSocket-Accept '
		. 'reaches the client');
	like($ws->{headers}{upgrade} // '', qr/^websocket$/i,
		'WebSocket: Upgrade: websocket');
	my ($req) = grep { $_->{path} eq '/ws' } $wsb->requests;
	like($req->{header}{connection} // '', qr/upgrade/i,
		'the backend got Connection: upgrade');
	like($req->{header}{upgrade} // '', qr/^websocket$/i,
		'the backend got Upgrade: websocket');

	ok($ws->send_text('hello, tunnel'), 'text frame sent');
	my $f = $ws->recv;
	is_deeply([ $f->{opcode}, $f->{payload}, $f->{masked} ],
		[ 1, 'hello, tunnel', 0 ], 'text frame echoed (unmasked, from the '
		. 'server)');
	my $bin = join('', map { chr } 0 .. 255) x 400; # 100 KB, every byte
	$ws->send_binary($bin);
	$f = $ws->recv;
	ok($f && $f->{opcode} == 2 && $f->{payload} eq $bin,
		'binary frame of 100 KB echoed byte for byte');
	$ws->send('part one, ', opcode => 1, fin => 0);
	$ws->send('part two', opcode => 0, fin => 1);
	my @parts = map { $ws->recv } 1 .. 2;
	is(join('|', map { "$_->{opcode}:$_->{fin}:$_->{payload}" } @parts),
		'1:0:part one, |0:1:part two', 'a fragmented message echoed');
	$ws->ping('are you there');
	$f = $ws->recv;
	is("$f->{opcode} $f->{payload}", '10 are you there', 'ping: pong');
	$ws->send_text("frame $_") for 1 .. 200;
	my @got = map { my $x = $ws->recv; $x ? $x->{payload} : '' } 1 .. 200;
	is_deeply(\@got, [ map { "frame $_" } 1 .. 200 ],
		'200 frames in a burst: all echoed, in order');
	my $c = $ws->close(1000, 'bye');
	ok($c && $c->{opcode} == 8 && substr($c->{payload}, 0, 2) eq
		pack('n', 1000), 'close: answered with a close frame (1000)');
	is(PortierTest::next_event($ws->sock, 5), 'eof',
		'close: then the connection ends');
}

# The tunnel idles out after proxy_read_timeout without traffic either
# way; traffic keeps it open.
{
	my $ws = ws('/idle/ws');
	is($ws->{status}, 101, 'idle tunnel: 101');
	my ($alive, $last) = (1, 0);
	my $t0 = time();
	for my $i (1 .. 8) {
		# nothing for 0.2 s, then a ping: never idle 500 ms
		$alive = 0 unless PortierTest::next_event($ws->sock, 0.2)
			eq 'timeout';
		$ws->ping("p$i");
		my $f = $ws->recv(3);
		$last = time();
		$alive = 0 unless $f && $f->{opcode} == 10;
	}
	ok($alive, sprintf('idle tunnel: open after %.1f s of pings every '
		. '0.2 s (proxy_read_timeout 500ms)', time() - $t0));
	my $ev = PortierTest::next_event($ws->sock, 5);
	my $el = time() - $last;
	is($ev, 'eof', 'idle tunnel: closed when idle');
	ok($el >= 0.4 && $el < 3, sprintf('idle tunnel: after %.2f s '
		. '(proxy_read_timeout 500ms)', $el));
	ok($t->wait_log(qr/tunnel idle: closed/), 'idle tunnel: logged');
}
$t->stop;

# ---- reloads under load -----------------------------------------------------------

my $tr = PortierTest->new;
my @rb = map { PortierBackend->new(name => "r$_", dir => $tr->dir) } 1 .. 3;

sub reload_conf {
	my ($n, $w) = @_;
	my @list = map { [ $rb[$_], 'weight = ' . ($w->[$_] // 1) . ';' ] }
		0 .. $n - 1;
	return <<"EOF";
worker_processes = 2;
upstreams = { app = { servers = ( @{[ servers(@list) ]} ); }; };
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; proxy_pass = "app"; } ); } );
EOF
}

# HUP to conf; wait for generation gen and for the old workers to leave.
# (between: what to do once the new generation is live, before waiting
# for the old workers.)
sub reload {
	my ($t, $conf, $gen, $nw, $between) = @_;
	my @old = $t->wait_workers($nw // 2);
	$t->config($conf);
	$t->signal('HUP');
	my $ok = $t->wait_log(qr/configuration generation $gen is live/);
	$between->() if $between;
	$ok &&= !grep { !PortierTest::wait_exit($_, 15) } @old;
	$ok &&= $t->wait_workers($nw // 2) == ($nw // 2);
	return $ok;
}

$tr->config(reload_conf(2))->run(workers => 2);
{
	# quick requests on both kinds of connections, and a slow download
	# through the proxy that is nearly always in flight
	my $mb = 1 << 20;
	my $load = PortierLoad->start(dir => $tr->dir, port => $tr->port(0),
		path => '/', body => qr/^r[123]\n\z/, keepalive => 3, close => 3,
		slow => 1, slow_path => "/big?size=$mb",
		slow_body => PortierBackend::pattern(0, $mb));
	ok($load->wait_requests(3, 20), 'load: every client is served');
	my $huge = PortierTest::inflight_size();
	my $want = PortierBackend::pattern(0, $huge);
	my @steps = ([reload_conf(3), 'a third peer'],
		[reload_conf(3, [3, 1, 1]), 'weights'],
		[reload_conf(2, [1, 2]), 'a peer removed']);
	for my $i (0 .. $#steps) {
		my ($conf, $what) = @{ $steps[$i] };
		my $gen = $i + 2;
		# and a download that an old worker has to finish
		my $dl = $tr->slow_get("/huge?size=$huge");
		my $buf = '';
		PortierTest::slow_read($dl, \$buf, 512 * 1024);
		ok(reload($tr, $conf, $gen, 2, sub {
			PortierTest::slow_read($dl, \$buf, length($want) + 4096, 0) }),
			"reload $gen ($what) under load: the old workers leave");
		my ($head, $body) = PortierTest::split_response($buf);
		ok(length($body) == $huge && $body eq $want, "reload $gen: the "
			. 'proxied download in flight completes')
			or diag('got ' . length($body) . " bytes; head: $head");
		close $dl;
		ok($load->wait_requests(3 * ($i + 2), 20),
			"load: served after reload $gen");
	}
	my $r = $load->stop;
	is($r->{nfail}, 0, "reloads under load: $r->{ok} requests, none failed "
		. "($r->{retries} idle-close retries)")
		or diag explain $r->{failures};
	ok($r->{bodies}{'(download)'}, 'reloads under load: downloads done');
	ok(grep({ /^r3\s*$/ } keys %{ $r->{bodies} }),
		'the peer added by a reload served');
	my $c = {};
	$c->{ backend_of($tr->get('/')) }++ for 1 .. 30;
	ok(!$c->{r3} && ($c->{r1} // 0) >= 7 && ($c->{r1} // 0) <= 13
		&& ($c->{r1} // 0) + ($c->{r2} // 0) == 30,
		'after the last reload: its peers and weights (1:2 over 30: r1 '
		. ($c->{r1} // 0) . ', r2 ' . ($c->{r2} // 0) . ')');
}
$tr->stop;

# ---- peer state across a reload ------------------------------------------------------

my $ts = PortierTest->new;
$t = $ts;
my @sb = map { PortierBackend->new(name => "s$_", dir => $ts->dir) } 1 .. 2;
sub state_conf {
	my ($name, $extra) = @_;
	return <<"EOF";
worker_processes = 2;
upstreams = { $name = { servers = (
  @{[ servers(map { [ $_, 'fail_timeout = "60s";' ] } @sb) ]} ); }; };
servers = ( { listen = "127.0.0.1:%%PORT_0%% reuseport";
  locations = ( { path = "/"; proxy_pass = "$name"; } $extra ); } );
EOF
}
$ts->config(state_conf('app', ''))->run(workers => 2);
{
	my $port2 = $sb[1]->port;
	$sb[1]->stop;
	my $ok = 1;
	ok(PortierTest::wait_for(sub {
		my $r = $ts->get('/');
		$ok = 0 unless $r && $r->{status} == 200;
		$ts->log_has(qr/peer 127\.0\.0\.1:$port2 is down/) }, 10),
		'state: the stopped peer is marked down');
	ok($ok, 'state: no request failed');
	ok(reload($ts, state_conf('app',
		', { path = "/other/"; return = "200 other"; }'), 2),
		'state: reload with a config that keeps the peer');
	is($ts->get('/other/')->{body}, 'other', 'state: the new config serves');
	$sb[1] = PortierBackend->new(name => 's2', dir => $ts->dir,
		port => $port2);
	my $c = {};
	$c->{ backend_of($ts->get('/')) }++ for 1 .. 30;
	is_deeply($c, { s1 => 30 }, 'state: after the reload the peer is '
		. 'still down in the new workers');
	is(scalar($sb[1]->requests), 0, 'state: the restarted peer saw no '
		. 'request');
	# the state belongs to the upstream's name and the address: under a
	# new name the same address starts afresh
	ok(reload($ts, state_conf('renamed', ''), 3),
		'state: reload renaming the upstream');
	$c = {};
	$c->{ backend_of($ts->get('/')) }++ for 1 .. 30;
	ok(($c->{s2} // 0) > 0 && ($c->{s1} // 0) + ($c->{s2} // 0) == 30,
		"state: a renamed upstream starts with fresh peer state (s1 "
		. ($c->{s1} // 0) . ', s2 ' . ($c->{s2} // 0) . ')');
}

done_testing;
