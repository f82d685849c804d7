#!/usr/bin/perl
# TLS from the proxy to backends (modules/proxy/proxy_tls.c, upconn.c,
# health.c), seen from outside with TLS test backends (PortierBackend's
# tls option) and a PKI made for the run (PortierTLS): verification
# against a CA that succeeds (bodies intact both ways, kept-alive TLS
# connections reused, sessions resumed on new connections) and that
# fails (an untrusted certificate, a wrong server_name: 502 and the
# reason in the error log), verify = false, SNI, client certificates,
# proxy_pass "https://IP:PORT" (the IP verified), a handshake broken or
# stalled by the backend (failover, timeout), health checks over TLS, a
# WebSocket through TLS, and config errors at file:line.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha1_hex);
use PortierTest;
use PortierBackend;
use PortierTLS;
use Test::More;

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;
my $pki = PortierTLS->new($t->dir . '/pki');
my $CA = $pki->ca;
my @good = $pki->server('ec', 'backend.test', '127.0.0.1');
my @noip = $pki->server('rsa', 'backend.test');
my @rogue = $pki->server('ec', 'backend.test', '127.0.0.1', { rogue => 1 });
my @client = $pki->client('portier-proxy');
# read by the master before workers drop privileges (when run as root)
chmod 0600, $client[1];

sub tls_backend {
	my ($name, $cert, %o) = @_;
	my $tls = { cert => $cert->[0], key => $cert->[1] };
	$tls->{ca} = delete $o{client_ca} if $o{client_ca};
	return PortierBackend->new(name => $name, dir => $t->dir, tls => $tls,
		%o);
}

my $ok = tls_backend('ok', \@good);
my $ux = tls_backend('ux', \@good, unix => $t->dir . '/tls.sock');
my $sess = tls_backend('sess', \@good);
my $ip = tls_backend('ip', \@good);
my $noip = tls_backend('noip', \@noip);
my $rogue = tls_backend('rogue', \@rogue);
my $mtls = tls_backend('mtls', \@good, client_ca => $CA);
my $broken = tls_backend('broken', \@good, tls_break => 'close');
my $fo = tls_backend('fo', \@good);
my $hang = tls_backend('hang', \@good, tls_break => 'hang');
my $hc_ok = tls_backend('hcok', \@good);
my $hc_plain = PortierBackend->new(name => 'hcplain', dir => $t->dir);
my $hc_rogue = tls_backend('hcrogue', \@rogue);

my $TLS = qq{tls = { ca = "$CA"; server_name = "backend.test"; };};
my $P = 'max_fails = 0;';

# proxy_pass "https://..." verifies against the system's store: here the
# test CA (OpenSSL's SSL_CERT_FILE, read when the config is loaded)
local $ENV{SSL_CERT_FILE} = $CA;

$t->config(<<"EOF")->run;
upstreams = {
  ok = { servers = ( { address = "${\ $ok->addr}"; } ); $TLS };
  ux = { servers = ( { address = "${\ $ux->addr}"; } ); $TLS };
  sess = { servers = ( { address = "${\ $sess->addr}"; } ); keepalive = 0; $TLS };
  ipdef = { servers = ( { address = "${\ $ip->addr}"; } ); tls = { ca = "$CA"; }; };
  rogue = { servers = ( { address = "${\ $rogue->addr}"; $P } ); $TLS };
  name = { servers = ( { address = "${\ $ok->addr}"; $P } );
    tls = { ca = "$CA"; server_name = "other.test"; }; };
  noverify = { servers = ( { address = "${\ $rogue->addr}"; } );
    tls = { verify = false; server_name = "any.test"; }; };
  nocert = { servers = ( { address = "${\ $mtls->addr}"; $P } ); $TLS };
  cert = { servers = ( { address = "${\ $mtls->addr}"; } );
    tls = { ca = "$CA"; server_name = "backend.test";
            cert = "$client[0]"; key = "$client[1]"; }; };
  fo = { servers = ( { address = "${\ $broken->addr}"; },
                     { address = "${\ $fo->addr}"; } ); $TLS };
  hang = { servers = ( { address = "${\ $hang->addr}"; $P } ); $TLS };
  hc = { servers = ( { address = "${\ $hc_ok->addr}"; },
                     { address = "${\ $hc_plain->addr}"; },
                     { address = "${\ $hc_rogue->addr}"; } );
    health_check = { path = "/health"; interval = "200ms"; timeout = "2s";
                     fall = 1; rise = 1; };
    $TLS };
};
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  client_max_body_size = 0;
  access_log = { path = "%%DIR%%/access.log"; buffer = 0;
    format = "\$request_uri|\$status|\$upstream_status|\$upstream_connect_time"; };
  locations = (
    { path = "/ok/"; proxy_pass = "ok"; },
    { path = "/sess/"; proxy_pass = "sess"; },
    { path = "/ux/"; proxy_pass = "ux"; },
    { path = "/ipdef/"; proxy_pass = "ipdef"; },
    { path = "/rogue/"; proxy_pass = "rogue"; },
    { path = "/name/"; proxy_pass = "name"; },
    { path = "/noverify/"; proxy_pass = "noverify"; },
    { path = "/nocert/"; proxy_pass = "nocert"; },
    { path = "/cert/"; proxy_pass = "cert"; },
    { path = "/fo/"; proxy_pass = "fo"; },
    { path = "/hang/"; proxy_pass = "hang"; proxy_connect_timeout = "300ms"; },
    { path = "/hc/"; proxy_pass = "hc"; },
    { path = "/https/"; proxy_pass = "https://127.0.0.1:${\ $ip->port}"; },
    { path = "/httpsnoip/"; proxy_pass = "https://127.0.0.1:${\ $noip->port}"; }
  ); } );
EOF

sub get { my ($path, %o) = @_; return $t->get($path, timeout => 30, %o) }

# ---- verified, bodies both ways, keep-alive ---------------------------------------
{
	my $r = get('/ok/');
	is($r->{status}, 200, 'verified TLS upstream: 200');
	is($r->{body}, "ok\n", 'verified TLS upstream: the body');
	my @req = $ok->requests;
	is($req[-1]{tls_sni}, 'backend.test', 'SNI is server_name');
	is($req[-1]{tls_client}, '', 'no client certificate unless configured');
	like($req[-1]{tls_version}, qr/TLSv1_3/, 'TLS 1.3 by default');

	$ok->clear;
	for my $i (1 .. 10) {
		$r = get("/ok/echo?body_only=1&i=$i", keepalive => 0,
			headers => [ 'Content-Type: text/plain' ],);
	}
	my $body = join('', map { chr(32 + $_ % 90) } 1 .. 70000);
	$r = $t->request('POST', '/ok/echo?body_only=1', body => $body,
		timeout => 30);
	is($r->{status}, 200, 'a body through TLS: 200');
	ok($r->{body} eq $body, 'a 70000-byte body comes back intact');
	my @seen = $ok->wait_requests(11);
	is(scalar @seen, 11, 'eleven requests reached the backend');
	cmp_ok($ok->connections, '<', 11,
		'kept-alive TLS connections are reused (fewer connections than '
		. 'requests: ' . $ok->connections . ')');
}

# ---- a unix socket: connected at once, then the handshake -----------------------
{
	my $r = get('/ux/');
	is($r->{status}, 200, 'TLS over a unix socket: 200');
	is($r->{body}, "ux\n", 'TLS over a unix socket: the body');
	is(($ux->requests)[-1]{tls_sni}, 'backend.test',
		'TLS over a unix socket: SNI is server_name');
}

# ---- large bodies ---------------------------------------------------------------------
{
	my $n = 10 << 20;
	my $r = get("/ok/x?size=$n");
	is($r->{status}, 200, '10 MiB response through TLS: 200');
	is(length($r->{body}), $n, '10 MiB response: every byte');
	is(sha1_hex($r->{body}), PortierBackend::pattern_sha1($n),
		'10 MiB response: sha1 intact');
	my $up = PortierBackend::pattern(0, $n);
	$r = $t->request('PUT', '/ok/sha1', body => $up, timeout => 60);
	is($r->{status}, 200, '10 MiB upload through TLS: 200');
	is($r->{headers}{'x-body-sha1'}, sha1_hex($up),
		'10 MiB upload: sha1 intact at the backend');
	is($r->{headers}{'x-body-length'}, $n, '10 MiB upload: length');
}

# ---- sessions resumed on new connections ------------------------------------------
{
	for my $i (1 .. 4) {
		my $r = get("/sess/?i=$i");
		is($r->{status}, 200, "keepalive = 0, request $i: 200");
	}
	my @hs = $sess->handshakes;
	is(scalar @hs, 4, 'keepalive = 0: one handshake per request');
	is($hs[0]{reused}, 0, 'the first handshake is a full one');
	is(join(',', map { $_->{reused} } @hs[1 .. $#hs]), '1,1,1',
		'the later ones resume the session the backend gave');
	my $log = $t->read_file('access.log') // '';
	like($log, qr{^/sess/\?i=4\|200\|200\|\d+\.\d{3}$}m,
		'$upstream_connect_time is logged for a TLS connection');
}

# ---- the name verified: an IP ------------------------------------------------------
{
	my $r = get('/ipdef/');
	is($r->{status}, 200, 'no server_name, an IP address: its IP SAN verified');
	$r = get('/https/');
	is($r->{status}, 200, 'proxy_pass "https://127.0.0.1:PORT": 200');
	is($r->{body}, "ip\n", 'proxy_pass https: the backend answers');
	my @req = $ip->requests;
	is($req[-1]{tls_sni}, '', 'an IP literal is not sent as SNI');
	$r = get('/httpsnoip/');
	is($r->{status}, 502, 'https://IP to a certificate without that IP: 502');
	ok($t->wait_log(qr/peer 127\.0\.0\.1:${\ $noip->port}: TLS handshake failed: certificate verify failed: IP address mismatch/),
		'error log: IP address mismatch');
}

# ---- verification failing -----------------------------------------------------------
{
	my $r = get('/rogue/');
	is($r->{status}, 502, 'a certificate of another CA: 502');
	ok($t->wait_log(qr/\[error\].*upstream "rogue" peer 127\.0\.0\.1:${\ $rogue->port}: TLS handshake failed: certificate verify failed: \S/),
		'error log: upstream, peer and the reason');
	is(scalar($rogue->requests), 0, 'no request reached the rogue backend');
	$r = get('/name/');
	is($r->{status}, 502, 'a wrong server_name: 502');
	ok($t->wait_log(qr/upstream "name" peer .*: TLS handshake failed: certificate verify failed: hostname mismatch/),
		'error log: hostname mismatch');
	$r = get('/noverify/');
	is($r->{status}, 200, 'verify = false: the rogue certificate is taken');
	is($r->{body}, "rogue\n", 'verify = false: the body');
	is(($rogue->requests)[-1]{tls_sni}, 'any.test',
		'verify = false: SNI is still server_name');
}

# ---- client certificates ---------------------------------------------------------------
{
	my $r = get('/nocert/');
	is($r->{status}, 502, 'a backend requiring a client certificate, none: 502');
	$r = get('/cert/');
	is($r->{status}, 200, 'cert/key given: 200');
	my @req = $mtls->requests;
	is(scalar @req, 1, 'only the request with a certificate got through');
	like($req[-1]{tls_client} // '', qr/CN\s*=\s*portier-proxy/,
		'the backend saw the client certificate');
}

# ---- a handshake broken by the backend: failover; a stalled one: 504 --------------
{
	my %seen;
	for (1 .. 4) {
		my $r = get('/fo/');
		$seen{"$r->{status} " . ($r->{headers}{'x-backend'} // '')}++;
	}
	is_deeply(\%seen, { '200 fo' => 4 },
		'a backend closing mid-handshake: every request failed over');
	ok($t->wait_log(qr/upstream "fo" peer 127\.0\.0\.1:${\ $broken->port}: TLS handshake failed/),
		'error log: the broken handshake');
	ok(scalar($broken->handshakes) >= 1, 'the broken backend was tried');
	my $r = get('/hang/');
	is($r->{status}, 504, 'a stalled handshake: 504 at proxy_connect_timeout');
	ok($t->wait_log(qr/upstream "hang" peer .*: TLS handshake timed out/),
		'error log: TLS handshake timed out');
}

# ---- health checks over TLS ------------------------------------------------------------
{
	ok($t->wait_log(qr/upstream "hc": peer 127\.0\.0\.1:${\ $hc_plain->port} is down/),
		'health check: a peer without TLS is down');
	ok($t->wait_log(qr/upstream "hc": peer 127\.0\.0\.1:${\ $hc_rogue->port} is down .*certificate verify failed/),
		'health check: a peer with an untrusted certificate is down');
	ok(!$t->log_has(qr/upstream "hc": peer 127\.0\.0\.1:${\ $hc_ok->port} is down/),
		'health check: the good peer is not');
	my @hc = grep { $_->{path} eq '/health' } $hc_ok->wait_requests(1);
	ok(@hc && $hc[0]{tls_sni} eq 'backend.test',
		'health checks reach the good peer over TLS, with SNI');
	my %seen;
	$seen{ get('/hc/')->{headers}{'x-backend'} // 'none' }++ for 1 .. 6;
	is_deeply(\%seen, { hcok => 6 }, 'requests go to the checked peer only');
}

# ---- WebSocket through a TLS upstream ----------------------------------------------------
{
	my $ws = PortierBackend::ws_client(port => $t->port(0), path => '/ok/ws');
	is($ws->{status}, 101, 'WebSocket through TLS: 101');
	ok($ws->{accept_ok}, 'WebSocket: the accept value');
	$ws->send_text('hello over tls');
	my $f = $ws->recv;
	is($f && $f->{payload}, 'hello over tls', 'WebSocket: a frame echoed');
	my $big = 'z' x 200000;
	$ws->send_binary($big);
	$f = $ws->recv;
	ok($f && $f->{payload} eq $big, 'WebSocket: a 200000-byte frame echoed');
	$f = $ws->close(1000);
	is($f && $f->{opcode}, 8, 'WebSocket: closed cleanly');
}

# ---- a reload builds new contexts; requests go on ------------------------------------
{
	$t->signal('HUP');
	ok($t->wait_log(qr/generation 2/), 'HUP: a new generation of workers');
	my $r = get('/cert/');
	is($r->{status}, 200, 'after HUP: client certificate, 200');
	$r = get('/https/');
	is($r->{status}, 200, 'after HUP: proxy_pass https, 200');
}

# ---- config errors -------------------------------------------------------------------------
{
	my $dir = $t->dir;
	my @cases = (
		[ 'ca unreadable', qq{ca = "$dir/none.pem"; server_name = "a";},
		  qr/bad\.conf:\d+: .*tls: ca "[^"]*none\.pem": /, ],
		[ 'cert without key', qq{ca = "$CA"; server_name = "a"; cert = "$client[0]";},
		  qr/bad\.conf:\d+: .*"cert" and "key" go together/, ],
		[ 'key of another cert', qq{ca = "$CA"; server_name = "a"; cert = "$client[0]"; key = "$good[1]";},
		  qr/bad\.conf:\d+: .*tls: key .*: /, ],
		[ 'a key that is not one', qq{ca = "$CA"; server_name = "a"; cert = "$client[0]"; key = "$CA";},
		  qr/bad\.conf:\d+: .*tls: key .*: /, ],
		[ 'unknown member', qq{ca = "$CA"; verify_depth = 3;},
		  qr/bad\.conf:\d+: .*verify_depth/, ],
		[ 'unknown protocol', qq{protocols = [ "SSLv3" ];},
		  qr/bad\.conf:\d+: .*unknown protocol "SSLv3"/, ],
		# SNI takes 1 to 255 bytes: else every connection would fail
		[ 'an empty server_name', qq{ca = "$CA"; server_name = "";},
		  qr/bad\.conf:\d+: .*server_name "": .*1 to 255/, ],
		[ 'a server_name of 256 bytes', qq{ca = "$CA"; server_name = "${\ ('a' x 256)}";},
		  qr/bad\.conf:\d+: .*server_name "a+": .*1 to 255/, ],
	);
	for my $c (@cases) {
		$t->write_file('bad.conf', <<"EOF");
error_log = "$dir/bad.log";
upstreams = { u = { servers = ( { address = "127.0.0.1:1"; } );
  tls = { $c->[1] }; }; };
servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );
EOF
		my ($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
		isnt($rc, 0, "portier -t fails: $c->[0]");
		like($err, $c->[2], "the message says where and why: $c->[0]");
	}
	$t->write_file('bad.conf', <<"EOF");
error_log = "$dir/bad.log";
upstreams = { u = { servers = ( { address = "unix:$dir/sock"; } ); tls = { ca = "$CA"; }; }; };
servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );
EOF
	my ($rc, $out, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
	like($err, qr/has no name to verify; set "server_name"/,
		'a unix: server with verify needs server_name');
}

$t->stop;
ok(!$t->log_has(qr/\[(?:alert|crit|emerg)\]/), 'no alert in the error log');

done_testing;
