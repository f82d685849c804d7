#!/usr/bin/perl
# TLS termination, SNI and certificates (issue 4): the server block's
# certificate picked by SNI with the lookup of Host (exact, leading
# wildcard, regex; no or an unknown SNI: the default_server), the
# certificate shown named by its subject CN; ECDSA or RSA from one
# server by the client's signature algorithms; TLS 1.3 and 1.2 served,
# TLS 1.0 and 1.1 refused by default (and accepted when configured, so
# the refusal is the default's doing), `protocols` restricting a server
# to TLS 1.3; ALPN (http/1.1, and no ALPN rather than an alert for h2
# alone); the $ssl_* variables, $https and $scheme in a response and in
# the access log, $ssl_session_reused on a resumed session; a server's
# tls group merged key by key with main's; and the 421 rule (SNI of a
# server without client verification, Host of one with it).
#
# Every wait is a bounded poll.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierTLS;
use PortierTLSClient;
use Test::More;
use IO::Socket::INET;
use IO::Socket::SSL;

PortierTest::need_modules(qw(rewrite));

my $t = PortierTest->new;
my $pki = PortierTLS->new($t->dir . '/pki');
my %c;
$c{main} = [ $pki->server('ec', 'main.test') ];
$c{a} = [ $pki->server('ec', 'a.test') ];
$c{wild} = [ $pki->server('ec', '*.b.test') ];
$c{api} = [ $pki->server('ec', 'api.test') ];
$c{def} = [ $pki->server('ec', 'default.test') ];
$c{dual_ec} = [ $pki->server('ec', 'dual.test', 'ec.dual.test') ];
$c{dual_rsa} = [ $pki->server('rsa', 'dual.test', 'rsa.dual.test') ];
$c{mtls} = [ $pki->server('ec', 'mtls.test') ];
$c{t13} = [ $pki->server('ec', 'tls13.test') ];
my ($alice_crt, $alice_key) = $pki->client('alice');
my $ca = $pki->ca;

sub certs {
	return '( ' . join(', ', map {
		qq({ cert = "$c{$_}[0]"; key = "$c{$_}[1]"; })
	} @_) . ' )';
}

my $VARS = '$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused'
	. '|$https|$scheme';
my $LEGACY = 'DEFAULT:@SECLEVEL=0';

my %conf = (certs_main => certs('main'), certs_def => certs('def'),
	certs_a => certs('a'), certs_wild => certs('wild'),
	certs_api => certs('api'), certs_dual => certs('dual_rsa', 'dual_ec'),
	certs_mtls => certs('mtls'), certs_t13 => certs('t13'));
my $conf = <<'EOF';
tls = { certificates = @certs_main@; };
access_log = { path = "%%DIR%%/vars.log"; format = "$host|@VARS@|$status"; };
servers = (
  { listen = "127.0.0.1:%%PORT_0%% ssl default_server";
    server_name = "default.test";
    tls = { certificates = @certs_def@; };
    return = "200 default|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "a.test";
    tls = { certificates = @certs_a@; };
    return = "200 a|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "*.b.test";
    tls = { certificates = @certs_wild@; };
    return = "200 wild|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "~^api\\d+\\.test$";
    tls = { certificates = @certs_api@; };
    return = "200 api|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "dual.test";
    tls = { certificates = @certs_dual@; };
    return = "200 dual|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "mtls.test";
    tls = { certificates = @certs_mtls@; client_ca = "@CA@";
            verify_client = "on"; };
    return = "200 mtls|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "tls13.test";
    tls = { certificates = @certs_t13@; protocols = [ "TLSv1.3" ]; };
    return = "200 tls13|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_1%%"; return = "200 plain|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_2%% ssl"; tls = { protocols = [ "TLSv1.3" ]; };
    return = "200 only13|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_3%% ssl"; tls = { ciphers = "@LEGACY@"; };
    return = "200 legacy-default|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_4%% ssl";
    tls = { ciphers = "@LEGACY@";
            protocols = [ "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" ]; };
    return = "200 legacy-on|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_6%% ssl proxy_protocol";
    return = "200 pp|$remote_addr|$proxy_protocol_addr|@VARS@"; },
  { listen = "127.0.0.1:%%PORT_5%% ssl"; server_name = "merge.test";
    tls = { ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384"; };
    return = "200 merge|@VARS@"; }
);
EOF
$conf =~ s/\@(\w+)\@/$1 eq 'VARS' ? $VARS : $1 eq 'CA' ? $ca
	: $1 eq 'LEGACY' ? $LEGACY : $conf{$1}/ge;
$t->config($conf)->run;
my @workers = $t->worker_pids;

my $P0 = $t->port(0);

# The fields of a body made by "NAME|@VARS@".
sub fields {
	my ($r) = @_;
	my %f;
	@f{qw(server protocol cipher sni reused https scheme)} =
		split /\|/, $r->{body} // '', -1;
	$_ //= '' for values %f;
	return \%f;
}

# ---- SNI picks the server's certificate -------------------------------------

for my $case (
	[ 'a.test', 'a.test', 'a', 'exact name' ],
	[ 'x.b.test', '*.b.test', 'wild', 'leading wildcard' ],
	[ 'api12.test', 'api.test', 'api', 'regex' ],
	[ 'apix.test', 'default.test', 'default', 'regex not matching: default' ],
	[ 'nothing.test', 'default.test', 'default', 'unknown name: default' ],
) {
	my ($sni, $cn, $srv, $what) = @$case;
	my $r = tls_get($P0, '/', sni => $sni);
	ok($r->{handshake}, "SNI $sni ($what): handshake")
		or diag($r->{error});
	is($r->{cn}, $cn, "SNI $sni ($what): certificate CN=$cn");
	is($r->{status}, 200, "SNI $sni ($what): 200");
	is(fields($r)->{server}, $srv, "SNI $sni ($what): served by $srv");
	is(fields($r)->{sni}, $sni, "SNI $sni ($what): \$ssl_server_name");
}
{
	my $r = tls_get($P0, '/', host => 'localhost');
	is($r->{cn}, 'default.test', 'no SNI: the default server\'s certificate');
	is(fields($r)->{server}, 'default', 'no SNI: served by the default server');
	is(fields($r)->{sni}, '', 'no SNI: $ssl_server_name empty');
	is_deeply($r->{san}, ['default.test'], 'no SNI: its subjectAltName');

	# the request still picks its server by Host (same verification: no 421)
	$r = tls_get($P0, '/', sni => 'a.test', host => 'default.test');
	is($r->{cn}, 'a.test', 'SNI a.test, Host default.test: a.test\'s certificate');
	is($r->{status}, 200, 'SNI a.test, Host default.test: 200');
	is(fields($r)->{server}, 'default',
		'SNI a.test, Host default.test: the server is picked by Host');
	$r = tls_get($P0, '/', host => 'a.test');
	is($r->{cn}, 'default.test', 'no SNI, Host a.test: default certificate');
	is(fields($r)->{server}, 'a', 'no SNI, Host a.test: served by a.test');

	# the same with openssl s_client, and the subject's whole form
	my $o = s_client($P0, ['-servername', 'x.b.test']);
	ok($o->{handshake}, 's_client SNI x.b.test: handshake');
	like($o->{subject}, qr/^O = portier test, CN = \*\.b\.test$/,
		's_client SNI x.b.test: the wildcard certificate');
}

# ---- the 421 rule: no mTLS bypass by Host -------------------------------------

{
	my $r = tls_get($P0, '/', sni => 'a.test', host => 'mtls.test');
	is($r->{status}, 421,
		'SNI a.test (no client verification), Host mtls.test (verify on): 421');
	unlike($r->{body}, qr/^mtls\|/, '421: mtls.test\'s content not served');
	$r = tls_get($P0, '/', host => 'mtls.test');
	is($r->{status}, 421, 'no SNI (default, no verification), Host mtls.test: 421');
	$r = tls_get($P0, '/', sni => 'mtls.test', host => 'mtls.test',
		cert => $alice_crt, key => $alice_key);
	is($r->{status}, 200, 'SNI and Host mtls.test with a client certificate: 200');
	is(fields($r)->{server}, 'mtls', 'which mtls.test serves');
	$r = tls_get($P0, '/', sni => 'mtls.test', host => 'a.test',
		cert => $alice_crt, key => $alice_key);
	is($r->{status}, 421,
		'SNI mtls.test (verify on), Host a.test (no verification): 421');
}

# ---- ECDSA or RSA by what the client supports -----------------------------------

{
	my $o = s_client($P0, ['-servername', 'dual.test']);
	is($o->{key_bits}, 256, 'dual, TLS 1.3, any sigalgs: the ECDSA key');
	is($o->{sig_type}, 'ECDSA', 'dual, TLS 1.3: ECDSA signature');
	$o = s_client($P0, ['-servername', 'dual.test', '-sigalgs',
		'ECDSA+SHA256:RSA-PSS+SHA256']);
	is($o->{key_bits}, 256, 'dual, TLS 1.3, ECDSA sigalg first: ECDSA');
	$o = s_client($P0, ['-servername', 'dual.test', '-sigalgs',
		'RSA-PSS+SHA256:rsa_pkcs1_sha256']);
	ok($o->{handshake}, 'dual, TLS 1.3, RSA sigalgs only: handshake');
	is($o->{key_bits}, 2048, 'dual, TLS 1.3, RSA sigalgs only: the RSA key');
	like($o->{sig_type}, qr/^RSA/, 'dual, TLS 1.3, RSA sigalgs only: RSA signature');
	is($o->{cn}, 'dual.test', 'dual: the server\'s own certificate');
	$o = s_client($P0, ['-servername', 'dual.test', '-tls1_2', '-cipher',
		'ECDHE-RSA-AES128-GCM-SHA256']);
	ok($o->{handshake}, 'dual, TLS 1.2, ECDHE-RSA only: handshake');
	is($o->{key_bits}, 2048, 'dual, TLS 1.2, ECDHE-RSA only: the RSA key');
	is($o->{cipher}, 'ECDHE-RSA-AES128-GCM-SHA256', 'dual, TLS 1.2: ECDHE-RSA');
	$o = s_client($P0, ['-servername', 'dual.test', '-tls1_2', '-cipher',
		'ECDHE-ECDSA-AES128-GCM-SHA256']);
	is($o->{key_bits}, 256, 'dual, TLS 1.2, ECDHE-ECDSA only: the ECDSA key');
	my $r = tls_get($P0, '/', sni => 'dual.test');
	is_deeply($r->{san}, ['dual.test', 'ec.dual.test'],
		'dual, Perl client: the ECDSA certificate (its SANs)');
}

# ---- protocol versions --------------------------------------------------------------

for my $v ([ 'TLSv1_3', 'TLSv1.3' ], [ 'TLSv1_2', 'TLSv1.2' ]) {
	my $r = tls_get($P0, '/', sni => 'a.test', version => $v->[0]);
	is($r->{protocol}, $v->[0], "$v->[1]: negotiated");
	is($r->{status}, 200, "$v->[1]: 200");
	is(fields($r)->{protocol}, $v->[1], "$v->[1]: \$ssl_protocol");
	is(fields($r)->{cipher}, $r->{cipher}, "$v->[1]: \$ssl_cipher ($r->{cipher})");
}
{
	my $r = tls_get($P0, '/', sni => 'a.test', version => 'TLSv1_2');
	like($r->{cipher}, qr/^ECDHE-ECDSA-(AES\d+-GCM|CHACHA20-POLY1305)/,
		'TLS 1.2 default ciphers: ECDHE and AEAD');
	my $o = s_client($P0, ['-servername', 'a.test', '-tls1_2', '-cipher',
		'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256']);
	ok(!$o->{handshake},
		'TLS 1.2 default ciphers: CBC suites and plain-RSA key exchange refused');
}
for my $v ([ '-tls1', 'TLS 1.0' ], [ '-tls1_1', 'TLS 1.1' ]) {
	my @a = ($v->[0], '-cipher', $LEGACY);
	# the client can do it: a server configured for it accepts
	my $o = s_client($t->port(4), [@a], request =>
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ok($o->{handshake}, "$v->[1] accepted where protocols lists it")
		or diag($o->{out});
	is($o->{status}, 200, "$v->[1] where allowed: 200");
	# and the default protocols refuse it, whatever the ciphers
	$o = s_client($t->port(3), [@a]);
	ok(!$o->{handshake}, "$v->[1] refused by the default protocols");
	$o = s_client($P0, [@a, '-servername', 'a.test']);
	ok(!$o->{handshake}, "$v->[1] refused by the default config");
}
{
	my $o = s_client($t->port(2), ['-tls1_2']);
	ok(!$o->{handshake}, 'protocols = [ "TLSv1.3" ]: TLS 1.2 refused');
	$o = s_client($t->port(2), ['-tls1_3'], request =>
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ok($o->{handshake}, 'protocols = [ "TLSv1.3" ]: TLS 1.3 accepted');
	is($o->{status}, 200, 'protocols = [ "TLSv1.3" ]: 200');
	# the server picked by SNI applies its own protocols too
	$o = s_client($P0, ['-tls1_2', '-servername', 'tls13.test']);
	ok(!$o->{handshake},
		'protocols = [ "TLSv1.3" ] of the server picked by SNI: TLS 1.2 refused')
		or diag("negotiated $o->{protocol} $o->{cipher}, cert $o->{cn}");
	$o = s_client($P0, ['-tls1_3', '-servername', 'tls13.test']);
	ok($o->{handshake} && $o->{cn} eq 'tls13.test',
		'the TLS-1.3-only server by SNI: TLS 1.3 accepted');
}

{
	# TLS 1.2: the server's cipher order wins over the client's
	my $o = s_client($P0, ['-servername', 'a.test', '-tls1_2', '-cipher',
		'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256']);
	is($o->{cipher}, 'ECDHE-ECDSA-AES128-GCM-SHA256',
		'TLS 1.2: the server\'s cipher order is preferred');
}

# ---- a PROXY protocol header, then TLS ---------------------------------------------------

{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
		PeerPort => $t->port(6), Proto => 'tcp', Timeout => 5) or die;
	syswrite($s, "PROXY TCP4 192.0.2.7 127.0.0.1 4321 443\r\n");
	my $ok = IO::Socket::SSL->start_SSL($s, SSL_hostname => 'a.test',
		SSL_verify_mode => 0, Timeout => 5);
	ok($ok, 'ssl proxy_protocol: TLS after the PROXY header')
		or diag($IO::Socket::SSL::SSL_ERROR);
	if ($ok) {
		my $r = tls_request($s, "GET / HTTP/1.1\r\nHost: a.test\r\n"
			. "Connection: close\r\n\r\n", until_eof => 1);
		like($r->{body}, qr/^pp\|192\.0\.2\.7\|192\.0\.2\.7\|TLSv1\.3\|/,
			'ssl proxy_protocol: the client address from the header, over TLS');
	}
	close $s;
}

# ---- ALPN ---------------------------------------------------------------------------

{
	my $req = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
	my $o = s_client($P0, ['-servername', 'a.test', '-alpn', 'http/1.1'],
		request => $req);
	is($o->{alpn}, 'http/1.1', 'ALPN http/1.1 offered: http/1.1 selected');
	is($o->{status}, 200, 'ALPN http/1.1: 200');
	$o = s_client($P0, ['-servername', 'a.test', '-alpn', 'h2'],
		request => $req);
	ok($o->{handshake}, 'ALPN h2 alone: the handshake completes (no alert)');
	ok($o->{no_alpn} && $o->{alpn} eq '', 'ALPN h2 alone: no ALPN negotiated');
	is($o->{status}, 200, 'ALPN h2 alone: HTTP/1.1 still served');
	$o = s_client($P0, ['-servername', 'a.test', '-alpn', 'h2,http/1.1'],
		request => $req);
	is($o->{alpn}, 'http/1.1', 'ALPN h2,http/1.1: http/1.1 selected');
	$o = s_client($P0, ['-servername', 'a.test'], request => $req);
	ok($o->{no_alpn}, 'no ALPN offered: none selected');
	my $r = tls_get($P0, '/', sni => 'a.test', alpn => ['h2', 'http/1.1']);
	is($r->{alpn}, 'http/1.1', 'Perl client, ALPN h2,http/1.1: http/1.1');
}

# ---- HTTP over TLS: keep-alive, pipelining --------------------------------------------

{
	my ($s, $err) = tls_connect($P0, sni => 'a.test');
	ok($s, 'keep-alive TLS connection') or diag($err);
	if ($s) {
		for my $i (1 .. 3) {
			my $r = tls_request($s, "GET /ka$i HTTP/1.1\r\nHost: a.test\r\n\r\n");
			is($r->{status}, 200, "keep-alive over TLS: request $i");
		}
		# three requests in one TLS record: each answered without more
		# bytes from the client (data already decrypted and buffered)
		my $req = join '', map { "GET /p$_ HTTP/1.1\r\nHost: a.test\r\n\r\n" } 1 .. 3;
		my $r = tls_request($s, $req, count => 3);
		my ($buf, $n) = ($r->{raw}, 0);
		while (my $len = PortierTest::response_length($buf)) {
			$n++;
			$buf = substr($buf, $len);
		}
		is($n, 3, 'three pipelined requests in one TLS record: three answers');
		my $h = tls_request($s, "HEAD /h HTTP/1.1\r\nHost: a.test\r\n"
			. "Connection: close\r\n\r\n", until_eof => 1);
		is($h->{status}, 200, 'HEAD over TLS: 200');
		ok($h->{eof}, 'Connection: close over TLS: closed');
		close $s;
	}
}

# ---- variables: $https, $scheme, $ssl_*, resumption ----------------------------------

{
	my $r = tls_get($P0, '/', sni => 'a.test', version => 'TLSv1_3');
	my $f = fields($r);
	is($f->{https}, 'on', '$https on TLS: on');
	is($f->{scheme}, 'https', '$scheme on TLS: https');
	is($f->{reused}, '.', '$ssl_session_reused on a new session: "."');
	$r = $t->get('/', port => $t->port(1));
	is($r->{body}, 'plain||||||http',
		'plain HTTP: $ssl_* and $https empty, $scheme http');

	my $sess = $t->dir . '/sess.pem';
	my $req = "GET /resume HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
	my $o = s_client($P0, ['-servername', 'a.test', '-sess_out', $sess],
		request => $req);
	is($o->{status}, 200, 'first session: 200');
	ok(!$o->{reused}, 'first session: new');
	is(fields($o->{response})->{reused}, '.', 'first session: $ssl_session_reused "."');
	ok(-s $sess, 'first session: saved');
	$o = s_client($P0, ['-servername', 'a.test', '-sess_in', $sess],
		request => $req);
	ok($o->{reused}, 'second connection with the saved session: Reused')
		or diag($o->{out});
	is(fields($o->{response})->{reused}, 'r',
		'resumed session: $ssl_session_reused "r"');
	is(fields($o->{response})->{server}, 'a', 'resumed session: served by a.test');

	# TLS 1.2 resumption too
	unlink $sess;
	$o = s_client($P0, ['-servername', 'a.test', '-tls1_2', '-sess_out', $sess],
		request => $req);
	$o = s_client($P0, ['-servername', 'a.test', '-tls1_2', '-sess_in', $sess],
		request => $req);
	ok($o->{reused}, 'TLS 1.2: the saved session resumes');
	is(fields($o->{response})->{reused}, 'r', 'TLS 1.2 resumed: "r"');

	# all of it in the access log
	my $log = '';
	ok(PortierTest::wait_for(sub {
		$log = $t->read_file('vars.log') // '';
		# each worker writes its own lines: wait for all of them
		$log =~ /^localhost(?:\|-?){5}\|http\|200$/m
		    && $log =~ /\|r\|on\|https\|200$/m
		    && $log =~ /\|421$/m }),
		'access log written');
	like($log, qr/^a\.test\|TLSv1\.3\|TLS_AES_\w+\|a\.test\|\.\|on\|https\|200$/m,
		'access log: TLS 1.3 request with every variable');
	like($log, qr/^a\.test\|TLSv1\.2\|ECDHE-ECDSA-\S+\|a\.test\|r\|on\|https\|200$/m,
		'access log: resumed TLS 1.2 session, "r"');
	like($log, qr/^mtls\.test\|TLSv1\.3\|\S+\|a\.test\|\.\|on\|https\|421$/m,
		'access log: the 421');
	# (an empty value is logged as "-")
	like($log, qr/^localhost(?:\|-?){5}\|http\|200$/m,
		'access log: plain HTTP, empty TLS variables');
}

# ---- tls merged key by key with main ----------------------------------------------------

{
	my $o = s_client($t->port(5), ['-servername', 'merge.test', '-tls1_2'],
		request => "GET / HTTP/1.1\r\nHost: merge.test\r\nConnection: close\r\n\r\n");
	ok($o->{handshake}, 'server with only ciphers: handshake');
	is($o->{cn}, 'main.test', 'server with only ciphers: main\'s certificate');
	is($o->{cipher}, 'ECDHE-ECDSA-AES256-GCM-SHA384',
		'server with only ciphers: its cipher list applies');
	is($o->{status}, 200, 'server with only ciphers: 200');
	$o = s_client($t->port(5), ['-servername', 'merge.test', '-tls1_2',
		'-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
	ok(!$o->{handshake}, 'server with only ciphers: a suite outside it refused');
	$o = s_client($t->port(5), ['-tls1_3']);
	ok($o->{handshake}, 'server with only ciphers: main\'s default protocols (TLS 1.3)');
	my $r = tls_get($t->port(2), '/');
	is($r->{cn}, 'main.test', 'server with only protocols: main\'s certificate');
}

is_deeply([ $t->worker_pids ], \@workers, 'the worker never restarted');
ok(!$t->log_has(qr/\[(alert|emerg|crit)\]/), 'no alert in the error log');

done_testing;
