#!/usr/bin/perl
# TLS client certificates (issue 4): verify_client "on" refuses a client
# without a certificate or with one from an unknown CA (in the handshake
# or with a 400) and such a request never reaches the backend; a valid
# certificate passes and the backend gets the client's identity through
# proxy_set_header ($ssl_client_s_dn in RFC 2253 form,
# $ssl_client_verify SUCCESS). verify_client "optional" accepts every
# client and reports: NONE without a certificate, FAILED:reason with an
# untrusted one, SUCCESS with a good one. client_ca set at main and
# verify_client at server scope: the tls groups merge key by key. The
# variables are in the access log too.
#
# Every wait is a bounded poll.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierBackend;
use PortierTLS;
use PortierTLSClient;
use Test::More;
use Digest::SHA ();

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;
my $b = PortierBackend->new(name => 'b1', dir => $t->dir, port => $t->port(5));
my $pki = PortierTLS->new($t->dir . '/pki');
my ($srv_crt, $srv_key) = $pki->server('ec', 'mtls.test');
my @alice = $pki->client('alice');
my @bob = $pki->client('bob', type => 'rsa');
my @comma = $pki->client('smith, j');
my @mallory = $pki->client('mallory', rogue => 1);
my $ca = $pki->ca;

my $LOC = <<'EOF';
locations = ( { path = "/"; proxy_pass = "http://127.0.0.1:%%PORT_5%%";
      proxy_set_header = { X-Client-DN = "$ssl_client_s_dn";
                           X-Client-Verify = "$ssl_client_verify";
                           X-Proto = "$scheme";
                           X-Client-I-DN = "$ssl_client_i_dn";
                           X-Client-Serial = "$ssl_client_serial";
                           X-Client-FP = "$ssl_client_fingerprint";
                           X-ALPN = "$ssl_alpn_protocol"; }; } );
EOF
$t->config(<<"EOF")->run;
tls = { certificates = ( { cert = "$srv_crt"; key = "$srv_key"; } );
        client_ca = "$ca"; };
access_log = { path = "%%DIR%%/mtls.log";
               format = "\$server_port|\$uri|\$status|\$ssl_client_verify|\$ssl_client_s_dn"; };
servers = (
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "mtls.test";
    tls = { verify_client = "on"; };
    $LOC },
  { listen = "127.0.0.1:%%PORT_1%% ssl"; server_name = "mtls.test";
    tls = { verify_client = "optional"; };
    $LOC }
);
EOF
my ($ON, $OPT) = ($t->port(0), $t->port(1));

# The backend's record of the request for path, or undef.
sub at_backend {
	my ($path) = @_;
	my ($q) = grep { ($_->{path} // '') eq $path } $b->requests;
	return $q;
}

# ---- verify_client = "on" -------------------------------------------------------

for my $case (
	[ 'no certificate', [], 'TLSv1_3' ],
	[ 'no certificate', [], 'TLSv1_2' ],
	[ 'a rogue CA\'s certificate', [ cert => $mallory[0], key => $mallory[1] ],
	  'TLSv1_3' ],
	[ 'a rogue CA\'s certificate', [ cert => $mallory[0], key => $mallory[1] ],
	  'TLSv1_2' ],
) {
	my ($what, $opt, $v) = @$case;
	(my $path = "/on-refused-$what-$v") =~ s/\W+/-/g;
	my $r = tls_get($ON, $path, sni => 'mtls.test', version => $v, @$opt);
	ok(!$r->{handshake} || $r->{status} == 400 || $r->{status} == 0,
		"on, $what, $v: refused in the handshake or 400")
		or diag("status $r->{status}");
	isnt($r->{status}, 200, "on, $what, $v: no 200");
	ok(!at_backend($path), "on, $what, $v: never reaches the backend");
}
{
	my $r = tls_get($ON, '/on-alice', sni => 'mtls.test', cert => $alice[0],
		key => $alice[1]);
	is($r->{status}, 200, 'on, valid certificate: 200');
	is($r->{headers}{'x-backend'}, 'b1', 'on, valid certificate: proxied');
	my $q = at_backend('/on-alice') // { header => {} };
	is($q->{header}{'x-client-dn'}, 'CN=alice,O=portier test',
		'on, valid certificate: X-Client-DN in RFC 2253 form');
	is($q->{header}{'x-client-verify'}, 'SUCCESS',
		'on, valid certificate: $ssl_client_verify SUCCESS');
	is($q->{header}{'x-proto'}, 'https', 'on: $scheme https to the backend');
	# the certificate as openssl itself sees it
	my $issuer = `openssl x509 -in '$alice[0]' -noout -issuer -nameopt RFC2253`;
	$issuer =~ s/^issuer=\s*//;
	chomp $issuer;
	my $serial = `openssl x509 -in '$alice[0]' -noout -serial`;
	$serial =~ s/^serial=//;
	chomp $serial;
	my $fp = `openssl x509 -in '$alice[0]' -noout -fingerprint -sha1`;
	$fp =~ s/^.*=//;
	$fp =~ s/[:\s]//g;
	is($q->{header}{'x-client-i-dn'}, $issuer,
		'on: $ssl_client_i_dn is the issuer in RFC 2253 form');
	is($q->{header}{'x-client-serial'}, $serial,
		'on: $ssl_client_serial is the serial in upper-case hex');
	is($q->{header}{'x-client-fp'}, lc $fp,
		'on: $ssl_client_fingerprint is the SHA-1 in lower-case hex');
	ok(!defined $q->{header}{'x-alpn'} || $q->{header}{'x-alpn'} eq '',
		'on: no ALPN asked, $ssl_alpn_protocol empty');
	$r = tls_get($ON, '/on-alpn', sni => 'mtls.test', cert => $alice[0],
		key => $alice[1], alpn => ['h2', 'http/1.1']);
	is($r->{status}, 200, 'on, ALPN offered: 200');
	$q = at_backend('/on-alpn') // { header => {} };
	is($q->{header}{'x-alpn'}, 'http/1.1',
		'on: $ssl_alpn_protocol is the protocol ALPN agreed');
	like($q->{header}{'x-forwarded-proto'} // 'https', qr/^https$/,
		'on: X-Forwarded-Proto (when sent) is https');

	$r = tls_get($ON, '/on-bob', sni => 'mtls.test', cert => $bob[0],
		key => $bob[1], version => 'TLSv1_2');
	is($r->{status}, 200, 'on, valid RSA certificate, TLS 1.2: 200');
	$q = at_backend('/on-bob') // { header => {} };
	is($q->{header}{'x-client-dn'}, 'CN=bob,O=portier test',
		'on, another client: its own DN');

	$r = tls_get($ON, '/on-comma', sni => 'mtls.test', cert => $comma[0],
		key => $comma[1]);
	$q = at_backend('/on-comma') // { header => {} };
	is($q->{header}{'x-client-dn'}, 'CN=smith\, j,O=portier test',
		'on: a comma in the CN escaped as RFC 2253 says');

	# no SNI: the default server is the verifying one
	$r = tls_get($ON, '/on-nosni', host => 'mtls.test');
	isnt($r->{status}, 200, 'on, no SNI, no certificate: no 200');
	ok(!at_backend('/on-nosni'), 'on, no SNI, no certificate: not at the backend');
	# a keep-alive connection with a certificate serves several requests
	my ($s, $err) = tls_connect($ON, sni => 'mtls.test', cert => $alice[0],
		key => $alice[1]);
	ok($s, 'on: keep-alive connection with a certificate') or diag($err);
	if ($s) {
		for my $i (1, 2) {
			my $x = tls_request($s, "GET /on-ka$i HTTP/1.1\r\n"
				. "Host: mtls.test\r\n\r\n");
			is($x->{status}, 200, "on: keep-alive request $i: 200");
		}
		close $s;
		is((at_backend('/on-ka2') // { header => {} })->{header}{'x-client-dn'},
			'CN=alice,O=portier test', 'on: keep-alive request 2 keeps the DN');
	}
}
# bodies both ways over TLS, through the proxy (partial TLS writes)
{
	my ($s, $err) = tls_connect($ON, sni => 'mtls.test', cert => $alice[0],
		key => $alice[1]);
	ok($s, 'on: connection for large bodies') or diag($err);
	if ($s) {
		my $body = join '', map { chr(($_ * 7) % 251) } 1 .. 65536;
		$body x= 16;
		my $r = tls_request($s, "POST /sha1 HTTP/1.1\r\nHost: mtls.test\r\n"
			. "Content-Length: " . length($body) . "\r\n\r\n" . $body,
			timeout => 20);
		is($r->{body}, Digest::SHA::sha1_hex($body) . ' ' . length($body) . "\n",
			'on: a 1 MiB upload over TLS reaches the backend whole');
		my $n = 4_000_000;
		$r = tls_request($s, "GET /dl?size=$n HTTP/1.1\r\nHost: mtls.test\r\n"
			. "Connection: close\r\n\r\n", timeout => 20);
		is(length($r->{body}), $n, 'on: a 4 MB download over TLS: its length');
		ok($r->{body} eq PortierBackend::pattern(0, $n),
			'on: a 4 MB download over TLS: its bytes');
		close $s;
	}
}
ok(!grep({ $_->{path} =~ /^\/on-(refused|nosni)/ } $b->requests),
	'on: no refused request at the backend, whatever came after');
ok($t->wait_log(qr/TLS handshake failed.*client: 127\.0\.0\.1/),
	'on: the refused handshakes are logged with the client address');

# ---- verify_client = "optional" --------------------------------------------------

{
	my $r = tls_get($OPT, '/opt-none', sni => 'mtls.test');
	is($r->{status}, 200, 'optional, no certificate: 200');
	my $q = at_backend('/opt-none') // { header => {} };
	is($q->{header}{'x-client-verify'}, 'NONE',
		'optional, no certificate: $ssl_client_verify NONE');
	is($q->{header}{'x-client-dn'} // '', '',
		'optional, no certificate: no DN');

	$r = tls_get($OPT, '/opt-rogue', sni => 'mtls.test', cert => $mallory[0],
		key => $mallory[1]);
	is($r->{status}, 200, 'optional, a rogue CA\'s certificate: accepted');
	$q = at_backend('/opt-rogue') // { header => {} };
	like($q->{header}{'x-client-verify'} // '', qr/^FAILED:\S/,
		'optional, a rogue CA\'s certificate: $ssl_client_verify FAILED:reason');

	$r = tls_get($OPT, '/opt-rogue12', sni => 'mtls.test', version => 'TLSv1_2',
		cert => $mallory[0], key => $mallory[1]);
	$q = at_backend('/opt-rogue12') // { header => {} };
	like($q->{header}{'x-client-verify'} // '', qr/^FAILED:\S/,
		'optional, TLS 1.2, a rogue CA\'s certificate: FAILED:reason');

	$r = tls_get($OPT, '/opt-alice', sni => 'mtls.test', cert => $alice[0],
		key => $alice[1]);
	is($r->{status}, 200, 'optional, valid certificate: 200');
	$q = at_backend('/opt-alice') // { header => {} };
	is($q->{header}{'x-client-verify'}, 'SUCCESS',
		'optional, valid certificate: SUCCESS');
	is($q->{header}{'x-client-dn'}, 'CN=alice,O=portier test',
		'optional, valid certificate: the DN');

	# the variables of one connection do not leak into the next one
	$r = tls_get($OPT, '/opt-none2', sni => 'mtls.test');
	$q = at_backend('/opt-none2') // { header => {} };
	is($q->{header}{'x-client-verify'}, 'NONE',
		'optional, a client without certificate after one with: NONE');
}

# ---- the access log -------------------------------------------------------------------

{
	my $log = '';
	ok(PortierTest::wait_for(sub {
		$log = $t->read_file('mtls.log') // '';
		$log =~ m{/opt-none2\|} }), 'access log written');
	like($log, qr{^$ON\|/on-alice\|200\|SUCCESS\|CN=alice,O=portier test$}m,
		'access log: on, valid certificate');
	like($log, qr{^$OPT\|/opt-none\|200\|NONE\|-?$}m,
		'access log: optional without certificate');
	like($log, qr{^$OPT\|/opt-rogue\|200\|FAILED:[^|]+\|}m,
		'access log: optional with a rogue certificate');
	unlike($log, qr{^$ON\|/on-refused\S*\|200\|}m,
		'access log: no refused request served');
}

ok(!$t->log_has(qr/\[(alert|emerg|crit)\]/), 'no alert in the error log');

# stopped here, not at END: its exit status must not become the test's
$b->stop;
done_testing;
