#!/usr/bin/perl
# Failover through the reverse proxy (mod_proxy, upconn.c, balance.c),
# seen from outside: a backend that stops costs idempotent clients
# nothing, is marked down (and the error log says which and why), and
# gets traffic again after fail_timeout; the down mark is shared by all
# workers; proxy_next_upstream (error, timeout, http_502/503/504,
# non_idempotent, off, proxy_next_upstream_tries) and what a POST may
# be retried after; proxy_read_timeout and proxy_connect_timeout (504);
# $upstream_status and $upstream_addr list every attempt; the keep-alive
# pool (reuse, keepalive = 0, keepalive_requests, a backend closing idle
# connections).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use Socket qw(:all);
use PortierTest;
use PortierHTTP;
use PortierBackend;
use Test::More;
use Time::HiRes qw(time sleep);

PortierTest::need_modules(qw(proxy));

# PortierBackend answers what the request asks for; some tests need one
# backend that fails whatever it is asked while the others answer. A
# backend created with path => P acts as if every request were for P
# (e.g. "/status/503", "/reset"). Installed before any backend forks.
{
	no warnings 'redefine';
	my $handle = \&PortierBackend::_handle;
	*PortierBackend::_handle = sub {
		my ($self, $c, $req) = @_;
		$req->{path} = $self->{path} if defined $self->{path};
		return $handle->(@_);
	};
}

my $t = PortierTest->new;

sub backends {
	my ($prefix, $n, %opt) = @_;
	return map { PortierBackend->new(name => "$prefix$_", dir => $t->dir,
		%opt) } 1 .. $n;
}

# A backend again on the port of one that was stopped.
sub restart {
	my ($b) = @_;
	return PortierBackend->new(name => $b->name, dir => $t->dir,
		port => $b->port);
}

# "{ address = ...; opt }, ..." for pairs of backend (or address) and
# options.
sub servers {
	my (@list) = @_;
	my @out;
	while (my ($b, $opt) = splice(@list, 0, 2)) {
		push @out, sprintf('{ address = "%s"; %s }',
			ref $b ? $b->addr : $b, $opt);
	}
	return join(",\n    ", @out);
}

sub backend_of {
	my ($r) = @_;
	return 'none' unless $r;
	return $r->{headers}{'x-backend'} // "status $r->{status}";
}

sub spread {
	my ($path, $n, %o) = @_;
	my %c;
	$c{ backend_of($t->get($path, %o)) }++ for 1 .. $n;
	return \%c;
}

# Requests that reached backends, with a target matching re.
sub seen {
	my ($re, @b) = @_;
	return scalar grep { $_->{target} =~ $re } map { $_->requests } @b;
}

# The access log line of the request whose target has "id=ID" (written
# after the answer: polled).
my $ID = 0;
sub logged {
	my ($id) = @_;
	my $line;
	PortierTest::wait_for(sub {
		($line) = ($t->read_file('access.log') // '')
			=~ /^(.*[?&]id=$id(?:&\S*)?\|.*)$/m;
		defined $line }, 5);
	return $line;
}

# A request with a fresh id; returns (response, access log fields:
# status, upstream_status, upstream_addr).
sub req {
	my ($method, $path, %o) = @_;
	my $id = ++$ID;
	$path .= ($path =~ /\?/ ? '&' : '?') . "id=$id";
	my $r = $t->request($method, $path, %o);
	my $line = logged($id) // '';
	my (undef, $st, $ust, $uaddr) = split /\|/, $line, -1;
	return ($r, { status => $st // '', ust => $ust // '',
		uaddr => $uaddr // '' });
}

my $LOG = 'access_log = { path = "%%DIR%%/access.log"; buffer = 0; '
	. 'format = "$request_uri|$status|$upstream_status|$upstream_addr"; };';

# ---- passive health: a stopped backend -------------------------------------------

my @pf = backends('pf', 3);
my @nx = backends('nx', 3);
my ($mx_bad) = backends('mxbad', 1, path => '/status/503');
my ($mx_ok) = backends('mxok', 1);
my @rs = backends('rs', 3);
# A refusing address: 127.0.0.2, where no test listens but the wildcard
# ones of t/40 (a stopped server's port on 127.0.0.1 could be taken by a
# test running alongside, and would then answer or hang).
my $dead = PortierBackend->new(name => 'dead', dir => $t->dir);
my $dead_port = $dead->port;
$dead->stop;
my ($po) = backends('po', 1);
my ($of) = backends('of', 1);
my ($rt) = backends('rt', 1);
my @rt2 = backends('rtt', 2);
my ($ct) = backends('ct', 1);

# A peer whose connect never completes: a listening socket whose accept
# queue is full (backlog 0 holds one connection, never accepted); the
# kernel drops further SYNs. (A non-routable address is not reliable on
# a machine whose network intercepts every connection.)
socket(my $hole, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($hole, SOL_SOCKET, SO_REUSEADDR, 1);
bind($hole, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
listen($hole, 0) or die "listen: $!";
my ($hole_port) = unpack_sockaddr_in(getsockname($hole));
my $filler = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
	PeerPort => $hole_port, Timeout => 2);
my $hole_ok = $filler && !IO::Socket::INET->new(PeerAddr => '127.0.0.1',
	PeerPort => $hole_port, Timeout => 1);

my $conf = <<"EOF";
upstreams = {
  pf = { servers = ( @{[ servers(map { ($_, 'fail_timeout = "3s";') } @pf) ]} ); };
  nx = { servers = ( @{[ servers(map { ($_, 'max_fails = 0;') } @nx) ]} ); };
  mx = { servers = ( @{[ servers($mx_bad, 'max_fails = 0;', $mx_ok, 'max_fails = 0;') ]} ); };
  rs = { servers = ( @{[ servers(map { ($_, 'max_fails = 0;') } @rs) ]} ); };
  po = { servers = ( @{[ servers("127.0.0.2:$dead_port", 'max_fails = 0;', $po, '') ]} ); };
  of = { servers = ( @{[ servers("127.0.0.2:$dead_port", '', $of, '') ]} ); };
  rt = { servers = ( @{[ servers($rt, '') ]} ); };
  rtt = { servers = ( @{[ servers(map { ($_, 'max_fails = 0;') } @rt2) ]} ); };
  ct = { servers = ( @{[ servers("127.0.0.1:$hole_port", 'max_fails = 0;', $ct, '') ]} ); };
};
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  $LOG
  locations = (
    { path = "/pf/"; proxy_pass = "pf"; },
    { path = "/def/"; proxy_pass = "nx"; },
    { path = "/n502/"; proxy_pass = "nx";
      proxy_next_upstream = [ "error", "timeout", "http_502" ]; },
    { path = "/n503/"; proxy_pass = "nx"; proxy_next_upstream = "http_503"; },
    { path = "/n504/"; proxy_pass = "nx"; proxy_next_upstream = [ "http_504" ]; },
    { path = "/tries/"; proxy_pass = "nx"; proxy_next_upstream = [ "http_503" ];
      proxy_next_upstream_tries = 2; },
    { path = "/mx/"; proxy_pass = "mx"; proxy_next_upstream = [ "error", "http_503" ]; },
    { path = "/rs/"; proxy_pass = "rs"; },
    { path = "/rsni/"; proxy_pass = "rs";
      proxy_next_upstream = [ "error", "timeout", "non_idempotent" ]; },
    { path = "/po/"; proxy_pass = "po"; },
    { path = "/off/"; proxy_pass = "of"; proxy_next_upstream = "off"; },
    { path = "/rt/"; proxy_pass = "rt"; proxy_read_timeout = "500ms";
      proxy_next_upstream = [ "error" ]; },
    { path = "/rtt/"; proxy_pass = "rtt"; proxy_read_timeout = "500ms"; },
    { path = "/ct/"; proxy_pass = "ct"; proxy_connect_timeout = "300ms"; },
    { path = "/hole/"; proxy_pass = "http://127.0.0.1:$hole_port";
      proxy_connect_timeout = "300ms"; }
  ); } );
EOF
$t->config($conf)->run;

{
	my $c = spread('/pf/', 30);
	is_deeply($c, { pf1 => 10, pf2 => 10, pf3 => 10 },
		'passive health: three peers share the load');
	my $port2 = $pf[1]->port;
	$pf[1]->stop;
	$c = spread('/pf/', 30);
	is_deeply($c, { pf1 => 15, pf3 => 15 },
		'a peer stopped: every GET still answered (by the others)');
	my ($r) = $t->request('PUT', '/pf/sha1', body => 'x' x 1000);
	is($r->{status}, 200, 'a PUT with a body: answered');
	ok($t->log_has(qr/upstream "pf" peer 127\.0\.0\.1:$port2: connect\(\) failed.*refused/i),
		'error log: which peer, connect() failed, refused');
	ok($t->log_has(qr/upstream "pf": peer 127\.0\.0\.1:$port2 is down for 3000 ms/),
		'error log: the peer is marked down for fail_timeout');
	my $down_at = time();
	$pf[1] = restart($pf[1]);
	$c = spread('/pf/', 6);
	SKIP: {
		skip 'too slow to look within fail_timeout', 1
			if time() - $down_at > 2;
		is($c->{pf2} // 0, 0, 'restarted: no traffic before fail_timeout');
	}
	ok(PortierTest::wait_for(sub { spread('/pf/', 3)->{pf2} }, 10),
		'restarted: traffic returns after fail_timeout');
	$c = spread('/pf/', 30);
	is_deeply($c, { pf1 => 10, pf2 => 10, pf3 => 10 },
		'restarted: the peer has its full share again');
}

# ---- proxy_next_upstream --------------------------------------------------------

{
	my ($r, $l) = req('GET', '/def/status/503');
	is($r->{status}, 503, 'default (error, timeout): a 503 is passed on');
	is($l->{ust}, '503', 'default: one attempt');
	for my $st (502, 503, 504) {
		my $loc = "/n$st/status/$st";
		($r, $l) = req('GET', $loc);
		is($r->{status}, $st, "http_$st: every peer answered $st: $st");
		is($l->{ust}, "$st, $st, $st", "http_$st: \$upstream_status lists "
			. 'three attempts');
		my @addr = split /, /, $l->{uaddr};
		is(scalar(keys %{{ map { $_ => 1 } @addr }}), 3,
			"http_$st: three distinct peers in \$upstream_addr");
		like(backend_of($r), qr/^nx\d$/, "http_$st: no peer left: the "
			. 'last answer is passed on as the backend wrote it');
	}
	($r, $l) = req('GET', '/n503/status/503?h=Retry-After:%2030');
	is($r->{headers}{'retry-after'}, '30', 'http_503: the last 503 keeps '
		. 'its Retry-After');
	($r, $l) = req('GET', '/n503/status/502');
	is($l->{ust}, '502', 'http_503 only: a 502 is not retried');
	($r, $l) = req('GET', '/n503/status/404');
	is("$r->{status} $l->{ust}", '404 404', 'a 404 is never retried');
	($r, $l) = req('GET', '/tries/status/503');
	is($l->{ust}, '503, 503', 'proxy_next_upstream_tries = 2: two attempts');
	is($r->{status}, 503, 'proxy_next_upstream_tries: the status');

	my ($ok, $two) = (1, 0);
	for (1 .. 10) {
		($r, $l) = req('GET', '/mx/');
		$ok = 0 unless $r->{status} == 200
			&& backend_of($r) eq 'mxok1';
		$two++ if $l->{ust} eq '503, 200';
	}
	ok($ok, 'http_503: a peer answering 503 is passed over: 10 of 10 '
		. 'answered 200');
	ok($two >= 4, "http_503: \$upstream_status \"503, 200\" ($two times)");
}

# What may be sent again: a GET always, a POST only when nothing was sent
# or with non_idempotent.
{
	$_->clear for @rs;
	my ($r, $l) = req('GET', '/rs/reset');
	is($r->{status}, 502, 'GET /reset everywhere: 502');
	is($l->{ust}, '502, 502, 502', 'GET: retried on every peer');
	$_->clear for @rs;
	($r, $l) = req('POST', '/rs/reset', body => 'data');
	is($r->{status}, 502, 'POST reset after being sent: 502');
	is(seen(qr/reset/, @rs), 1, 'POST: sent once, not retried');
	is($l->{ust}, '502', 'POST: one attempt in $upstream_status');
	$_->clear for @rs;
	($r, $l) = req('POST', '/rsni/reset', body => 'data');
	is(seen(qr/reset/, @rs), 3, 'POST with non_idempotent: retried on '
		. 'every peer');

	# a kept-alive connection: the reuse retry must not resend a POST
	$_->clear for @rs;
	($r) = req('POST', '/rs/echo', body => 'one');
	is($r->{status}, 200, 'a POST that succeeds leaves a pooled connection');
	my ($first) = grep { seen(qr/echo/, $_) } @rs;
	$_->clear for @rs;
	# the next POST to the same peer goes over that connection
	my @seq;
	for (1 .. 3) {
		($r, $l) = req('POST', '/rs/reset', body => 'data');
		push @seq, $l->{uaddr};
		last if $l->{uaddr} eq $first->addr;
	}
	is(seen(qr/reset/, $first), 1, 'POST reset on a reused connection: '
		. 'not sent again (RFC 9112, 9.3.1)');

	($r, $l) = req('POST', '/po/echo?body_only=1', body => 'posted');
	is("$r->{status} $r->{body}", '200 posted', 'POST to a peer that '
		. 'refuses the connection: nothing was sent, retried');
	is($l->{ust}, '502, 200', 'POST to a refused peer: "502, 200"');

	($r, $l) = req('GET', '/off/');
	is($r->{status}, 502, 'proxy_next_upstream "off": the refused peer '
		. 'gives 502');
	is($l->{ust}, '502', '"off": one attempt');
	is(scalar($of->requests), 0, '"off": the other peer saw nothing');
	($r) = req('GET', '/off/');
	is(backend_of($r), 'of1', '"off": the refused peer is down, the next '
		. 'request goes to the other');
}

# ---- timeouts ------------------------------------------------------------------

{
	my $t0 = time();
	my ($r, $l) = req('GET', '/rt/?delay=3000');
	my $el = time() - $t0;
	is($r->{status}, 504, 'proxy_read_timeout: 504');
	ok($el >= 0.4 && $el < 2.5, sprintf('proxy_read_timeout 500ms: '
		. 'answered after %.2f s', $el));
	is($l->{ust}, '504', 'proxy_read_timeout: $upstream_status 504');
	ok($t->log_has(qr/upstream "rt" peer \S+: timed out reading the response head/),
		'proxy_read_timeout: logged');
	($r, $l) = req('GET', '/rtt/?delay=3000');
	is("$r->{status} $l->{ust}", '504 504, 504', 'timeout (default '
		. 'proxy_next_upstream): both peers tried, 504');
	($r, $l) = req('GET', '/rtt/?delay=10');
	is($r->{status}, 200, 'a quick answer within proxy_read_timeout');
}

SKIP: {
	skip 'no listening socket with a full accept queue here', 7
		unless $hole_ok;
	my $t0 = time();
	my ($r, $l) = req('GET', '/hole/');
	my $el = time() - $t0;
	is($r->{status}, 504, 'proxy_connect_timeout: 504');
	ok($el >= 0.25 && $el < 2.5, sprintf('proxy_connect_timeout 300ms: '
		. 'answered after %.2f s', $el));
	is($l->{ust}, '504', 'proxy_connect_timeout: $upstream_status');
	ok($t->log_has(qr/peer 127\.0\.0\.1:$hole_port: connect timed out/),
		'proxy_connect_timeout: logged');
	($r, $l) = req('GET', '/ct/');
	is(backend_of($r), 'ct1', 'connect timeout: the next peer answers');
	is($l->{ust}, '504, 200', '$upstream_status: "504, 200"');
	is($l->{uaddr}, "127.0.0.1:$hole_port, " . $ct->addr,
		'$upstream_addr: both attempts');
}
$t->stop;
close $filler if $filler;

# ---- the keep-alive pool ---------------------------------------------------------

my $tk = PortierTest->new;
$t = $tk;
my ($ka) = backends('ka', 1);
my ($k0) = backends('kz', 1);
my ($kr) = backends('kr', 1);
my ($ic) = backends('ic', 1, idle_close_ms => 40);
$tk->config(<<"EOF")->run;
upstreams = {
  ka = { servers = ( @{[ servers($ka, '') ]} ); };
  kz = { keepalive = 0; servers = ( @{[ servers($k0, '') ]} ); };
  kr = { keepalive_requests = 5; servers = ( @{[ servers($kr, '') ]} ); };
  ic = { servers = ( @{[ servers($ic, '') ]} ); };
};
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = (
    { path = "/ka/"; proxy_pass = "ka"; },
    { path = "/kz/"; proxy_pass = "kz"; },
    { path = "/kr/"; proxy_pass = "kr"; },
    { path = "/ic/"; proxy_pass = "ic"; }
  ); } );
EOF

# Wait (bounded) until backend b has closed its side of every connection
# (none of its sockets ESTABLISHED any more in /proc/net/tcp).
sub idle_closed {
	my ($b) = @_;
	my $port = sprintf ':%04X', $b->port;
	return PortierTest::wait_for(sub {
		open my $fh, '<', '/proc/net/tcp' or return 1;
		!grep { my @f = split ' '; @f > 3 && $f[1] =~ /\Q$port\E$/
			&& $f[3] eq '01' } <$fh>;
	}, 5);
}

{
	my $c = spread('/ka/', 50);
	is($c->{ka1}, 50, 'pool: 50 requests answered');
	is($ka->connections, 1, 'pool: over one backend connection');
	$c = spread('/kz/', 20);
	is($c->{kz1}, 20, 'keepalive = 0: 20 requests answered');
	is($k0->connections, 20, 'keepalive = 0: a connection each');
	ok(!grep({ ($_->{header}{connection} // '') !~ /close/i }
		$k0->requests),
		'keepalive = 0: each request says "Connection: close"');
	$c = spread('/kr/', 20);
	is($c->{kr1}, 20, 'keepalive_requests = 5: 20 requests answered');
	is($kr->connections, 4, 'keepalive_requests = 5: four connections');

	# The backend closes a connection idle for 40 ms. Every other request
	# goes once it has closed the pooled one (its side of every
	# connection is gone), the others at once, on a live one.
	my ($n, $fail) = (0, 0);
	for my $i (1 .. 150) {
		idle_closed($ic) if $i % 2 == 0;
		my $r = $t->get('/ic/');
		$n++;
		$fail++ unless $r && $r->{status} == 200;
	}
	is($fail, 0, "a backend closing idle connections: $n requests, none "
		. 'failed');
	my $retried = () = ($t->read_file('error.log') // '')
		=~ /on a kept-alive connection to \S+; retrying/g;
	ok($ic->connections > 5, 'idle close: the backend did close them ('
		. $ic->connections . " connections, $retried retried)");

	# A POST can not be sent again once it went out on a connection the
	# backend was closing (it may have been applied): such a race costs
	# that request a 502, but it is not the peer's failure, so it must
	# not mark the (only) peer down for everyone else.
	my %st;
	for my $i (1 .. 100) {
		idle_closed($ic) if $i % 2 == 0;
		my $r = $t->request('POST', '/ic/echo?body_only=1', body => 'p');
		$st{ $r ? $r->{status} : 0 }++;
	}
	is(($st{200} // 0) + ($st{502} // 0), 100, 'idle close, POST: 200 or '
		. "(lost race) 502 only: @{[ map { \"$_ x $st{$_}\" } sort keys %st ]}");
	ok(!$t->log_has(qr/peer \Q${\ $ic->addr }\E is down/),
		'idle close, POST: the peer is never marked down');
}
$tk->stop;

# ---- the down mark is shared by every worker ---------------------------------------



sub request_on {
	my ($s, $path) = @_;
	write_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n");
	my $r = read_responses($s, 1, timeout => 10);
	return $r->{responses}[0];
}

my $t4 = PortierTest->new;
$t = $t4;
my @sh = backends('sh', 2);
$t4->config(<<"EOF")->run(workers => 4);
worker_processes = 4;
upstreams = { sh = { servers = (
  @{[ servers(map { ($_, 'fail_timeout = "60s";') } @sh) ]} ); }; };
servers = ( { listen = "127.0.0.1:%%PORT_0%% reuseport";
  locations = ( { path = "/"; proxy_pass = "sh"; } ); } );
EOF
{
	my @workers = $t4->wait_workers(4);
	my $per = conn_per_worker($t4, @workers);
	is(scalar keys %$per, 4, 'four workers: a connection to each');
	my @order = sort { $a <=> $b } keys %$per;
	my $port2 = $sh[1]->port;
	$sh[1]->stop;
	my $one = $per->{ $order[0] };
	my $ok = 1;
	ok(PortierTest::wait_for(sub {
		my $r = request_on($one, '/');
		$ok = 0 unless $r && $r->{status} == 200;
		$t4->log_has(qr/peer 127\.0\.0\.1:$port2 is down/) }, 10),
		'four workers: one worker marked the stopped peer down');
	ok($ok, 'four workers: no request failed meanwhile');
	$sh[1] = restart($sh[1]);
	$sh[0]->clear;
	my %c;
	for my $round (1 .. 5) {
		$c{ backend_of(request_on($per->{$_}, '/')) }++ for @order;
	}
	is_deeply(\%c, { sh1 => 20 }, 'four workers: every worker avoids the '
		. 'peer another one marked down');
	is(scalar($sh[1]->requests), 0, 'four workers: the restarted peer\'s '
		. 'request log is empty');
	is(scalar($sh[0]->requests), 20, 'four workers: the other peer served '
		. 'all 20');
	my $marks = () = ($t4->read_file('error.log') // '')
		=~ /peer 127\.0\.0\.1:$port2 is down/g;
	is($marks, 1, 'four workers: marked down once');
	close $_ for values %$per;
}

done_testing;
