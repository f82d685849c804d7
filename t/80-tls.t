#!/usr/bin/perl
# TLS termination, the basic path: GET over TLS 1.3 and 1.2, a 1 MiB
# static file and a proxied request with their bodies intact, several
# requests kept alive on one TLS connection, the $ssl_* variables in a
# return, a header and the access log (and the proxy's
# X-Forwarded-Proto), plain HTTP on the TLS port (400 with the reason),
# SNI choosing the server and its certificate, TLS 1.1 refused by default,
# a PROXY protocol header before the handshake, and `portier -t` with bad
# TLS settings (file:line). The exhaustive matrix (key types, mTLS,
# broken handshakes, reloads) is t/8x-tls-*.t's.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use PortierTLS;
use PortierBackend;
use Digest::SHA qw(sha1_hex);
use IO::Select;
use IO::Socket::SSL;
use Test::More;

PortierTest::need_modules(qw(static proxy));

my $t = PortierTest->new;
my $dir = $t->dir;
my $pki = PortierTLS->new("$dir/pki");
my ($a_ec, $a_ec_key) = $pki->server('ec', 'a.test');
my ($a_rsa, $a_rsa_key) = $pki->server('rsa', 'a.test');
my ($b_ec, $b_ec_key) = $pki->server('ec', 'b.test', '*.b.test');
my $big = join('', map { chr(($_ * 7 + 3) % 256) } 0 .. 1023) x 1024;
$t->write_file('www/big.bin', $big);
$t->write_file('www/small.txt', "small\n");
my $b1 = PortierBackend->new(name => 'b1', dir => $dir);

my $VARS = '$ssl_protocol|$ssl_server_name|$https|$scheme|'
	. '$ssl_client_verify|$ssl_session_reused|$ssl_client_s_dn';
my $conf = <<"EOF";
tls = { certificates = ( { cert = "$a_ec"; key = "$a_ec_key"; },
                         { cert = "$a_rsa"; key = "$a_rsa_key"; } ); };
servers = (
  {
    listen = [ "127.0.0.1:%%PORT_0%% ssl", "127.0.0.1:%%PORT_2%% ssl proxy_protocol" ];
    server_name = "a.test";
    root = "%%DIR%%/www";
    access_log = { path = "%%DIR%%/access.log";
                   format = "\$ssl_protocol \$ssl_cipher \$ssl_server_name \$https \$scheme \$status \$uri"; };
    add_header = { X-TLS = "\$ssl_protocol \$ssl_cipher"; };
    locations = (
      { path = "/vars"; return = "200 $VARS"; },
      { path = "/proxy/"; proxy_pass = "http://127.0.0.1:@{[$b1->port]}"; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_0%% ssl";
    server_name = [ "b.test", "*.b.test" ];
    tls = { certificates = ( { cert = "$b_ec"; key = "$b_ec_key"; } ); };
    locations = ( { path = "/"; return = "200 B \$ssl_server_name"; } );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    locations = ( { path = "/"; return = "200 plain \$scheme|\$https|\$ssl_protocol"; } );
  }
);
EOF
$t->config($conf)->run;

# A TLS connection to port $o{port} (0), SNI $o{sni} (a.test), verified
# against the test CA unless $o{noverify}.
sub tls_connect {
	my (%o) = @_;
	my %args = (
		PeerAddr => '127.0.0.1',
		PeerPort => $t->port($o{port} // 0),
		SSL_hostname => $o{sni} // 'a.test',
		SSL_ca_file => $pki->ca,
		SSL_verify_mode => $o{noverify} ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
		SSL_verifycn_name => $o{sni} // 'a.test',
		SSL_verifycn_scheme => 'http',
		Timeout => 5,
	);
	$args{SSL_version} = $o{version} if $o{version};
	$args{SSL_cipher_list} = $o{ciphers} if $o{ciphers};
	$args{SSL_sigalgs} = $o{sigalgs} if $o{sigalgs};
	return IO::Socket::SSL->new(%args);
}

# Read n responses from a TLS socket (data may wait inside the session,
# where select does not see it).
sub tls_read {
	my ($s, $n, $timeout) = @_;
	my $sel = IO::Select->new($s);
	my $end = time() + ($timeout // 10);
	my ($buf, @out) = ('');
	while (@out < $n) {
		my $len = PortierTest::response_length($buf);
		if ($len) {
			push @out, PortierTest::parse_response(substr($buf, 0, $len));
			$buf = substr($buf, $len);
			next;
		}
		last if time() > $end;
		next unless $s->pending || $sel->can_read($end - time());
		my $r = sysread($s, $buf, 65536, length $buf);
		last unless $r;
	}
	return @out;
}

sub tls_get {
	my ($path, %o) = @_;
	my $s = tls_connect(%o) or return undef;
	my $host = $o{host} // $o{sni} // 'a.test';
	print $s "GET $path HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n";
	my ($r) = tls_read($s, 1);
	close $s;
	return $r;
}

sub peer_pem { Net::SSLeay::PEM_get_string_X509($_[0]->peer_certificate) }
sub first_pem {
	my $pem = $t->read_file($_[0] =~ s/^\Q$dir\E\///r);
	return $pem =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n)/s ? $1 : '';
}

# ---- protocols and variables ----------------------------------------------------
my $r = tls_get('/vars', version => 'TLSv1_3');
is($r && $r->{body}, 'TLSv1.3|a.test|on|https|NONE|.|', 'TLS 1.3: the variables');
like($r && $r->{headers}{'x-tls'}, qr/^TLSv1\.3 TLS_\w+$/, '$ssl_* in a header');
$r = tls_get('/vars', version => 'TLSv1_2');
is($r && $r->{body}, 'TLSv1.2|a.test|on|https|NONE|.|', 'TLS 1.2');
like($r && $r->{headers}{'x-tls'}, qr/^TLSv1\.2 ECDHE-(ECDSA|RSA)-\S+$/,
	'TLS 1.2: an ECDHE AEAD cipher');
ok(!tls_connect(version => 'TLSv1_1', ciphers => 'DEFAULT:@SECLEVEL=0'),
	'TLS 1.1 refused by default');
ok(PortierHTTP::wait_log($t, qr/TLS handshake failed: .*client: 127\.0\.0\.1/),
	'a failed handshake is logged at info with the client');

# ---- certificates and SNI ------------------------------------------------------------
my $s = tls_connect(version => 'TLSv1_2', ciphers => 'ECDHE-RSA-AES128-GCM-SHA256');
like($s && $s->peer_certificate('subject'), qr/CN\s*=\s*a\.test/, 'a.test by SNI');
is($s && peer_pem($s), first_pem($a_rsa), 'an RSA-only client gets the RSA certificate');
close $s if $s;
$s = tls_connect(version => 'TLSv1_2', ciphers => 'ECDHE-ECDSA-AES128-GCM-SHA256');
is($s && peer_pem($s), first_pem($a_ec), 'an ECDSA client gets the ECDSA certificate');
close $s if $s;
$r = tls_get('/', sni => 'b.test');
is($r && $r->{body}, 'B b.test', 'SNI b.test: its server');
$r = tls_get('/', sni => 'x.b.test');
is($r && $r->{body}, 'B x.b.test', 'SNI by wildcard');
$s = tls_connect(sni => 'x.b.test');
like($s && $s->peer_certificate('subject'), qr/CN\s*=\s*b\.test/,
	'the wildcard server\'s certificate');
close $s if $s;
$s = tls_connect(sni => 'nowhere.test', noverify => 1);
like($s && $s->peer_certificate('subject'), qr/CN\s*=\s*a\.test/,
	'an unknown name: the default server\'s certificate');
close $s if $s;

# ---- bodies ------------------------------------------------------------------------------
$r = tls_get('/big.bin');
is($r && $r->{status}, 200, '1 MiB static file over TLS');
is($r && sha1_hex($r->{body}), sha1_hex($big), '... intact');
$r = tls_get('/proxy/sha1x?size=1048576');
is($r && $r->{status}, 200, 'proxied over TLS');
is($r && length($r->{body}), 1048576, '... whole');
is($r && sha1_hex($r->{body}), PortierBackend::pattern_sha1(1048576), '... intact');
$r = tls_get('/proxy/echo');
like($r && $r->{body}, qr/^X-Forwarded-Proto: https\r$/mi,
	'X-Forwarded-Proto follows $scheme');

# ---- keep-alive ---------------------------------------------------------------------------
$s = tls_connect();
my @got;
for my $i (1 .. 5) {
	print $s "GET /small.txt HTTP/1.1\r\nHost: a.test\r\n\r\n";
	push @got, tls_read($s, 1);
}
print $s "GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n"
	. "GET /vars HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
push @got, tls_read($s, 2);
close $s;
is(scalar(grep { $_->{status} == 200 } @got), 7, 'seven requests on one TLS connection');
is(join('', map { $_->{body} } @got[0 .. 4]), "small\n" x 5, '... their bodies');
is(sha1_hex($got[5]{body} // ''), sha1_hex($big), '... a pipelined large one');
like($got[6]{body} // '', qr/^TLSv1\.3\|/, '... and the last');

# ---- plain HTTP on the TLS port -----------------------------------------------------
my $raw = $t->raw("GET /vars HTTP/1.1\r\nHost: a.test\r\n\r\n", port => $t->port(0));
like($raw // '', qr{^HTTP/1\.1 400 }, 'plain HTTP on a TLS port: 400');
like($raw // '', qr/The plain HTTP request was sent to HTTPS port/, '... saying why');
like($raw // '', qr/^Connection: close\r$/mi, '... and closing');
ok(PortierHTTP::wait_log($t, qr/plain HTTP request to a TLS port/),
	'... logged');
$r = $t->get("/", port => $t->port(1));
is($r && $r->{body}, 'plain http||', 'the plain port: $scheme http, no $https');

# ---- a PROXY protocol header, then TLS ----------------------------------------------
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
		PeerPort => $t->port(2), Timeout => 5);
	syswrite($sock, "PROXY TCP4 192.0.2.7 198.51.100.1 5000 443\r\n");
	my $ok = IO::Socket::SSL->start_SSL($sock, SSL_hostname => 'a.test',
		SSL_ca_file => $pki->ca, SSL_verifycn_name => 'a.test',
		SSL_verifycn_scheme => 'http');
	ok($ok, 'TLS after a PROXY protocol header');
	if ($ok) {
		print $sock "GET /vars HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
		my ($pr) = tls_read($sock, 1);
		like($pr && $pr->{body}, qr/^TLSv1\.3\|a\.test\|on\|https/, '... serves');
	}
	close $sock;
}

# ---- the access log -------------------------------------------------------------------
ok(PortierTest::wait_for(sub {
	($t->read_file('access.log') // '') =~ /^TLSv1\.2 ECDHE-\S+ a\.test on https 200 \/vars$/m }, 10),
	'the access log: TLS variables');
ok(PortierTest::wait_for(sub {
	($t->read_file('access.log') // '') =~ /^- - - - http 400 /m }, 10),
	'the access log: the plain request on the TLS port, 400');

# ---- portier -t: bad TLS settings ---------------------------------------------------
$t->write_file('bad.pem', "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
my @bad = (
	[ 'missing cert', qq{certificates = ( { cert = "%%DIR%%/nope.pem"; key = "$a_ec_key"; } );},
	  qr/:\d+: tls: cert "[^"]*nope\.pem": No such file/ ],
	[ 'unparseable PEM', qq{certificates = ( { cert = "%%DIR%%/bad.pem"; key = "$a_ec_key"; } );},
	  qr/:\d+: tls: cert "[^"]*bad\.pem": / ],
	[ 'mismatched key', qq{certificates = ( { cert = "$a_ec"; key = "$b_ec_key"; } );},
	  qr/:\d+: tls: key "[^"]*b\.test[^"]*": (key values mismatch|does not match)/ ],
	[ 'unknown protocol', qq{certificates = ( { cert = "$a_ec"; key = "$a_ec_key"; } ); protocols = [ "SSLv3" ];},
	  qr/:\d+: "protocols": unknown protocol "SSLv3"/ ],
	[ 'bad ciphers', qq{certificates = ( { cert = "$a_ec"; key = "$a_ec_key"; } ); ciphers = "NOSUCH";},
	  qr/:\d+: tls: ciphers "NOSUCH": / ],
	[ 'verify_client value', qq{certificates = ( { cert = "$a_ec"; key = "$a_ec_key"; } ); verify_client = "maybe";},
	  qr/:\d+: .*verify_client/ ],
	[ 'unreadable client_ca', qq{certificates = ( { cert = "$a_ec"; key = "$a_ec_key"; } ); client_ca = "%%DIR%%/none.pem"; verify_client = "on";},
	  qr/:\d+: tls: client_ca "[^"]*none\.pem": No such file/ ],
	[ 'no certificates', '', qr/:\d+: server listens with "ssl" but has no tls certificates/ ],
);
for my $b (@bad) {
	my ($name, $tls, $re) = @$b;
	$t->config(<<"EOF", file => 'bad.conf');
servers = ( { listen = "127.0.0.1:%%PORT_3%% ssl"; tls = { $tls };
              locations = ( { path = "/"; return = "200 x"; } ); } );
EOF
	my ($code, $out, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
	isnt($code, 0, "portier -t fails: $name");
	like($err, qr/bad\.conf$re/, "... with file:line: $name");
}
$t->config(<<"EOF", file => 'bad.conf');
servers = (
  { listen = "127.0.0.1:%%PORT_3%% ssl"; tls = { certificates = ( { cert = "$a_ec"; key = "$a_ec_key"; } ); }; },
  { listen = "127.0.0.1:%%PORT_3%%"; server_name = "x"; } );
EOF
my ($code, $out, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
isnt($code, 0, 'portier -t fails: ssl and plain on one address');
like($err, qr/bad\.conf:\d+: "listen": .*with and without "ssl"/, '... with file:line');

diag($t->read_file("access.log")) if $ENV{TLS_DEBUG};
done_testing();
