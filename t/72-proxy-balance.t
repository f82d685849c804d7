#!/usr/bin/perl
# Balancing through the reverse proxy (mod_proxy, src/balance.c), seen
# from outside: a real portier in front of PortierBackend backends on
# loopback. Ratios by weight for round_robin (exact with one worker,
# within one request per worker and peer with four), least_conn (an idle
# peer wins over one holding a slow request, in-flight counts shared by
# the workers), random (by weight), ewma (the fast peer wins), ip_hash
# (one client network, one peer), hash on $arg_k and $cookie_x (a key
# sticks; removing a peer by reload moves only that peer's keys), backup
# peers (only when every primary is down), and max_conns counted across
# workers (503 when every peer is full).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use PortierTest;
use PortierHTTP;
use PortierBackend;
use Test::More;

PortierTest::need_modules(qw(proxy));

# PortierBackend answers what the request asks for; the ewma test needs
# one backend that is slow whatever it is asked. A backend created with
# delay_ms => MS acts as if every request carried ?delay=MS. (Installed
# before any backend forks, so the backend processes run it.)
{
	no warnings 'redefine';
	my $handle = \&PortierBackend::_handle;
	*PortierBackend::_handle = sub {
		my ($self, $c, $req) = @_;
		$req->{query}{delay} //= $self->{delay_ms} if $self->{delay_ms};
		return $handle->(@_);
	};
}

my $t = PortierTest->new;

sub backends {
	my ($prefix, $n, %opt) = @_;
	return map { PortierBackend->new(name => "$prefix$_", dir => $t->dir,
		%opt) } 1 .. $n;
}

# "{ address = ...; weight = w; }, ..." for backends and their options.
sub servers {
	my (@list) = @_;
	my @out;
	while (my ($b, $opt) = splice(@list, 0, 2)) {
		push @out, sprintf('{ address = "%s"; %s }', $b->addr, $opt);
	}
	return join(",\n    ", @out);
}

sub backend_of {
	my ($r) = @_;
	return 'none' unless $r;
	return $r->{headers}{'x-backend'} // "status $r->{status}";
}

# How many answers came from each backend, for n GETs of path.
sub spread {
	my ($path, $n, %o) = @_;
	my %c;
	$c{ backend_of($t->get($path, %o)) }++ for 1 .. $n;
	return \%c;
}

# A GET from a given source address (127.0.0.0/8 is all local on Linux).
sub get_from {
	my ($src, $path) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
		PeerPort => $t->port(0), LocalAddr => $src, Proto => 'tcp',
		Timeout => 5) or return undef;
	syswrite($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
		. "Connection: close\r\n\r\n");
	my $raw = PortierTest::read_until($s, undef, 5);
	close $s;
	return PortierTest::parse_response($raw);
}

# Send a request without reading its answer (a slow one stays in flight).
sub start_request {
	my ($path, %o) = @_;
	my $s = connect_raw($t, %o);
	write_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
		. "Connection: close\r\n\r\n");
	return $s;
}

sub finish_request {
	my ($s) = @_;
	my $r = read_responses($s, 1, timeout => 10);
	close $s;
	return $r->{responses}[0];
}

# The request log entries of backends whose target matches re.
sub seen {
	my ($re, @b) = @_;
	return scalar grep { $_->{target} =~ $re } map { $_->requests } @b;
}

# ---- one worker: exact ratios, each balancer --------------------------------

my @rr = backends('rr', 3);
my @lc = backends('lc', 2);
my @lw = backends('lw', 2);
my @rnd = backends('rnd', 2);
my ($fast) = backends('fast', 1);
my ($slow) = backends('slow', 1, delay_ms => 150);
my @ip = backends('ip', 3);
my @hs = backends('hs', 3);
my @ck = backends('ck', 3);
my @bk = backends('bk', 3);

my $conf = <<"EOF";
upstreams = {
  rr = { servers = ( @{[ servers($rr[0], 'weight = 3;', $rr[1], 'weight = 2;',
    $rr[2], '') ]} ); };
  lc = { balance = "least_conn"; servers = ( @{[ servers(map { ($_, '') } @lc) ]} ); };
  lw = { balance = "least_conn"; servers = ( @{[ servers($lw[0], 'weight = 2;',
    $lw[1], '') ]} ); };
  rnd = { balance = "random"; servers = ( @{[ servers($rnd[0], 'weight = 3;',
    $rnd[1], '') ]} ); };
  ewma = { balance = "ewma"; servers = ( @{[ servers($fast, '', $slow, '') ]} ); };
  ip = { balance = "ip_hash"; servers = ( @{[ servers(map { ($_, '') } @ip) ]} ); };
  hs = { balance = "hash"; hash_key = "\$arg_k";
    servers = ( @{[ servers(map { ($_, '') } @hs) ]} ); };
  ck = { balance = "hash"; hash_key = "\$cookie_x";
    servers = ( @{[ servers(map { ($_, '') } @ck) ]} ); };
  bk = { servers = ( @{[ servers($bk[0], 'fail_timeout = "1s";',
    $bk[1], 'fail_timeout = "1s";', $bk[2], 'backup = true;') ]} ); };
};
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = (
    { path = "/rr/"; proxy_pass = "rr"; },
    { path = "/lc/"; proxy_pass = "lc"; },
    { path = "/lw/"; proxy_pass = "lw"; },
    { path = "/rnd/"; proxy_pass = "rnd"; },
    { path = "/ewma/"; proxy_pass = "ewma"; },
    { path = "/ip/"; proxy_pass = "ip"; },
    { path = "/hs/"; proxy_pass = "hs"; },
    { path = "/ck/"; proxy_pass = "ck"; },
    { path = "/bk/"; proxy_pass = "bk"; }
  ); } );
EOF
$t->config($conf)->run;

# round robin: smooth and weighted, so exact over whole rounds
{
	my $c = spread('/rr/', 60);
	is_deeply($c, { rr1 => 30, rr2 => 20, rr3 => 10 },
		'round_robin 3:2:1, one worker: exactly 30/20/10 of 60');
	# nginx's smooth weighted round robin: a b a c b a, not a a a b b c
	my @seq = map { backend_of($t->get('/rr/')) } 1 .. 12;
	is("@seq", join(' ', ('rr1 rr2 rr1 rr3 rr2 rr1') x 2),
		'round_robin is smooth: the weights interleave');
}

# least_conn: a peer holding a slow request loses to the idle one
{
	my $s = start_request('/lc/?delay=3000');
	ok(PortierTest::wait_for(sub { seen(qr/delay=3000/, @lc) == 1 }),
		'least_conn: the slow request reached a backend');
	my ($busy) = grep { seen(qr/delay=3000/, $_) } @lc;
	my $c = spread('/lc/', 10);
	my $idle = $busy == $lc[0] ? 'lc2' : 'lc1';
	is_deeply($c, { $idle => 10 },
		'least_conn: while ' . $busy->name . ' holds a slow request, '
		. 'every request goes to the idle peer');
	is(backend_of(finish_request($s)), $busy->name,
		'least_conn: the slow request completes');
	$c = spread('/lc/', 10);
	is_deeply($c, { lc1 => 5, lc2 => 5 },
		'least_conn: idle peers share by round robin again');
	$c = spread('/lw/', 30);
	is_deeply($c, { lw1 => 20, lw2 => 10 },
		'least_conn: idle peers share by weight (2:1)');
}

# random: two choices drawn by weight; idle peers, so the first draw wins
{
	my $c = spread('/rnd/', 400);
	my $n1 = $c->{rnd1} // 0;
	is($n1 + ($c->{rnd2} // 0), 400, 'random: every request answered');
	# 300 expected, standard deviation 8.7
	ok($n1 >= 255 && $n1 <= 345, "random 3:1: $n1 of 400 on the heavier "
		. 'peer (300 +- 45)');
}

# ewma: latency decides
{
	my $c = spread('/ewma/', 40);
	my $ns = $c->{slow1} // 0;
	is(($c->{fast1} // 0) + $ns, 40, 'ewma: every request answered');
	ok($ns <= 3, "ewma: the slow peer (150 ms) got $ns of 40 requests");
}

# ip_hash: the client's /24 picks the peer
{
	my (%of, %used, $consistent);
	$consistent = 1;
	for my $net (1 .. 30) {
		my @got = map { backend_of(get_from("127.$net.0.$_", '/ip/')) }
			1 .. 3;
		$consistent = 0 if grep { $_ ne $got[0] } @got;
		$of{$net} = $got[0];
		$used{ $got[0] }++;
	}
	ok($consistent, 'ip_hash: one network (x.y.z.1-3) always gets the '
		. 'same peer');
	ok(!grep({ !/^ip\d$/ } keys %used), 'ip_hash: every request answered')
		or diag explain \%used;
	ok(keys(%used) >= 2, 'ip_hash: 30 networks use '
		. scalar(keys %used) . ' of 3 peers');
	my @again = map { backend_of(get_from("127.$_.0.9", '/ip/')) } 1 .. 30;
	is_deeply(\@again, [ map { $of{$_} } 1 .. 30 ],
		'ip_hash: the same networks later: the same peers');
}

# hash on $arg_k and on $cookie_x
my %hmap;
{
	my ($sticky, %per) = (1);
	for my $k (1 .. 150) {
		my @got = map { backend_of($t->get("/hs/?k=key$k")) } 1 .. 2;
		$sticky = 0 if $got[0] ne $got[1];
		$hmap{$k} = $got[0];
		$per{ $got[0] }++;
	}
	ok($sticky, 'hash $arg_k: a key always goes to the same peer');
	ok(!grep({ ($per{$_} // 0) < 20 } qw(hs1 hs2 hs3)),
		'hash $arg_k: 150 keys spread over the 3 peers')
		or diag explain \%per;
	($sticky, %per) = (1);
	for my $k (1 .. 90) {
		my @got = map { backend_of($t->get('/ck/', headers =>
			["Cookie: a=1; x=user$k; b=2"])) } 1 .. 2;
		$sticky = 0 if $got[0] ne $got[1];
		$per{ $got[0] }++;
	}
	ok($sticky, 'hash $cookie_x: a cookie value always goes to the same '
		. 'peer');
	is(scalar(grep { $per{$_} } qw(ck1 ck2 ck3)), 3,
		'hash $cookie_x: 90 cookies use every peer')
		or diag explain \%per;
}

# backup: used only when no primary is live
{
	my $c = spread('/bk/', 20);
	is_deeply($c, { bk1 => 10, bk2 => 10 },
		'backup: unused while the primaries are up');
	my $p1 = $bk[0]->port;
	$bk[0]->stop;
	$c = spread('/bk/', 20);
	is_deeply($c, { bk2 => 20 },
		'backup: one primary down: the other one serves, not the backup');
	my $p2 = $bk[1]->port;
	$bk[1]->stop;
	$c = spread('/bk/', 20);
	is_deeply($c, { bk3 => 20 },
		'backup: every primary down: the backup serves, no error');
	@bk[0, 1] = map { PortierBackend->new(name => "bk$_->[0]",
		dir => $t->dir, port => $_->[1]) } [1, $p1], [2, $p2];
	ok(PortierTest::wait_for(sub {
		backend_of($t->get('/bk/')) =~ /^bk[12]$/ }, 10),
		'backup: the primaries serve again after fail_timeout');
	ok(PortierTest::wait_for(sub {
		my $x = spread('/bk/', 4);
		!$x->{bk3} }, 10),
		'backup: then the backup is idle again');
	$c = spread('/bk/', 20);
	is($c->{bk3} // 0, 0, 'backup: no request on the backup');
}
$t->stop;

# ---- four workers: shared state ------------------------------------------------



# One keep-alive request on socket s.
sub request_on {
	my ($s, $path) = @_;
	write_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n");
	my $r = read_responses($s, 1, timeout => 10);
	return $r->{responses}[0];
}

my $t4 = PortierTest->new;
$t = $t4;
my @w4 = backends('w', 3);
my @sh = backends('sh', 2);
my @mc = backends('mc', 2);
$t4->config(<<"EOF")->run(workers => 4);
worker_processes = 4;
upstreams = {
  rr = { servers = ( @{[ servers($w4[0], 'weight = 3;', $w4[1], 'weight = 2;',
    $w4[2], '') ]} ); };
  lc = { balance = "least_conn"; servers = ( @{[ servers(map { ($_, '') } @sh) ]} ); };
  mc = { servers = ( @{[ servers(map { ($_, 'max_conns = 1;') } @mc) ]} ); };
};
servers = ( { listen = "127.0.0.1:%%PORT_0%% reuseport";
  locations = (
    { path = "/rr/"; proxy_pass = "rr"; },
    { path = "/lc/"; proxy_pass = "lc"; },
    { path = "/mc/"; proxy_pass = "mc"; }
  ); } );
EOF
my @workers = $t4->wait_workers(4);
my $per = conn_per_worker($t4, @workers);
is(scalar keys %$per, 4, 'four workers: a connection to each');

{
	my %c;
	for my $round (1 .. 30) {
		$c{ backend_of(request_on($_, '/rr/')) }++ for values %$per;
	}
	my $ok = 1;
	my %want = (w1 => 60, w2 => 40, w3 => 20);
	for (keys %want) {
		$ok = 0 if abs(($c{$_} // 0) - $want{$_}) > 4;
	}
	ok($ok && ($c{w1} // 0) + ($c{w2} // 0) + ($c{w3} // 0) == 120,
		'round_robin 3:2:1 over four workers: within 4 of 60/40/20 '
		. "(w1 $c{w1}, w2 $c{w2}, w3 $c{w3})");
}

# least_conn sees the requests in flight in every worker: slow requests
# sent one at a time, each through the next worker, alternate between
# the peers (a worker counting only its own would put its first request
# on the same peer as every other worker). Only slow requests: a request
# that just completed may still count for a moment after its answer
# reached the client, which would make a tie.
{
	my @order = sort { $a <=> $b } keys %$per;
	my @got;
	for my $i (0 .. $#order) {
		my $s = $per->{ $order[$i] };
		write_all($s, "GET /lc/?delay=3000&n=$i HTTP/1.1\r\n"
			. "Host: localhost\r\n\r\n");
		PortierTest::wait_for(sub { seen(qr/delay=3000&n=$i$/, @sh) });
		push @got, map { seen(qr/delay=3000&n=$i$/, $_) ? $_->name : () }
			@sh;
	}
	my $alt = !grep { $got[$_] eq $got[$_ - 1] } 1 .. $#got;
	ok(@got == 4 && $alt, 'least_conn, four workers: slow requests '
		. "through each worker in turn alternate between the peers (@got)");
	my @back = map { backend_of(read_responses($per->{$_}, 1,
		timeout => 10)->{responses}[0]) } @order;
	is("@back", "@got", 'least_conn, four workers: the slow requests '
		. 'complete');
}

# max_conns across workers
{
	my @slow = map { start_request("/mc/?delay=3000&n=$_") } 1 .. 2;
	ok(PortierTest::wait_for(sub {
		seen(qr/delay=3000/, $mc[0]) == 1
		&& seen(qr/delay=3000/, $mc[1]) == 1 }),
		'max_conns = 1: two slow requests, one on each peer');
	my @st = map { (request_on($_, '/mc/') // { status => 0 })->{status} }
		values %$per;
	is_deeply(\@st, [503, 503, 503, 503], 'max_conns: every worker '
		. 'answers 503 while both peers are full');
	ok($t4->log_has(qr/upstream "mc": every live peer is at max_conns/),
		'max_conns: logged');
	is(seen(qr/^\/mc\/$/, @mc), 0, 'max_conns: no request reached a full '
		. 'peer');
	my @done = map { backend_of(finish_request($_)) } @slow;
	is_deeply([sort @done], [qw(mc1 mc2)], 'max_conns: the slow requests '
		. 'complete');
	# a 503 of portier's own closes the connection
	close $_ for values %$per;
	$per = conn_per_worker($t4, @workers);
	@st = map { (request_on($_, '/mc/') // { status => 0 })->{status} }
		values %$per;
	is_deeply(\@st, [200, 200, 200, 200], 'max_conns: the slots are '
		. 'given back: every worker is served again');
}
close $_ for values %$per;
$t4->stop;

# ---- hash: a reload that removes a peer moves only its keys ----------------------

my $th = PortierTest->new;
$t = $th;
my @hr = backends('hr', 3);
sub hash_conf {
	my (@b) = @_;
	return <<"EOF";
worker_processes = 2;
upstreams = { h = { balance = "hash"; hash_key = "\$arg_k";
  servers = ( @{[ servers(map { ($_, '') } @b) ]} ); }; };
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; proxy_pass = "h"; } ); } );
EOF
}
$th->config(hash_conf(@hr))->run(workers => 2);
sub key_map { return { map { $_ => backend_of($t->get("/?k=key$_")) } 1 .. 200 } }
my $m1 = key_map();
is(scalar(grep { /^hr\d$/ } values %$m1), 200, 'hash: 200 keys answered');
my $on3 = grep { $_ eq 'hr3' } values %$m1;
ok($on3 > 20, "hash: $on3 keys on hr3");

sub reload_to {
	my ($t, $conf, $gen) = @_;
	my @old = $t->wait_workers(2);
	$t->config($conf);
	$t->signal('HUP');
	ok($t->wait_log(qr/configuration generation $gen is live/),
		"reload: generation $gen is live");
	ok(!grep({ !PortierTest::wait_exit($_) } @old),
		"reload: the old workers are gone");
	$t->wait_workers(2);
}

reload_to($th, hash_conf(@hr[0, 1]), 2);
my $m2 = key_map();
my @moved = grep { $m1->{$_} ne $m2->{$_} } 1 .. 200;
my @bad = grep { $m1->{$_} ne 'hr3' } @moved;
is(scalar @bad, 0, 'hash: removing hr3 by reload moves no key of hr1 or hr2');
is(scalar @moved, $on3, "hash: every key of hr3 ($on3) moved");
ok(!grep({ !/^hr[12]$/ } values %$m2), 'hash: every key is served by '
	. 'hr1 or hr2');
reload_to($th, hash_conf(@hr), 3);
my $m3 = key_map();
is_deeply($m3, $m1, 'hash: putting hr3 back restores every key\'s peer');

done_testing;
