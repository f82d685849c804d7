#!/usr/bin/perl
# Certificate revocation lists (`crl` in the server's and in an
# upstream's tls group). verify_client "on": a revoked client is refused
# in the handshake, never reaches the backend, and the info log says
# "certificate revoked"; an unrevoked client of the same CA gets in.
# "optional": the revoked client is served with $ssl_client_verify
# "FAILED:certificate revoked". Servers of one address whose crl differs
# verify differently: 421. A HUP to a CRL that revokes a client that was
# fine refuses its new handshakes and its saved session (a full
# handshake, not a resumption, then refused) while a HUP with the same
# CRL still resumes. An expired CRL: a warning at load and its clients
# refused. Bad files (missing, no CRL, a CRL that does not parse) and
# crl without client_ca: `portier -t` fails with file:line, a HUP is
# refused and the old configuration keeps serving. Upstreams: a backend
# whose certificate the upstream's crl revokes gives 502 and a log line,
# an unrevoked one works, crl without verify is refused.
#
# Every wait is a bounded poll.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::SSL qw(SSL_VERIFY_NONE $SSL_ERROR);
use PortierTest;
use PortierBackend;
use PortierTLS;
use PortierTLSClient;
use Test::More;

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;
my $b = PortierBackend->new(name => 'b1', dir => $t->dir, port => $t->port(5));
my $pki = PortierTLS->new($t->dir . '/pki');
my $ca = $pki->ca;
my ($srv_crt, $srv_key) =
	$pki->server('ec', 'mtls.test', 'a.test', 'b.test', 'c.test');
my @alice = $pki->client('alice');
my @bob = $pki->client('bob');     # revoked from the start
my @carol = $pki->client('carol'); # revoked by a HUP
my @mallory = $pki->client('mallory', rogue => 1);

# backends of an upstream with its own crl
my @bgood = $pki->server('ec', 'backend.test');
my @brev = $pki->server('ec', 'backend.test');
sub tls_backend {
	my ($name, $cert) = @_;
	return PortierBackend->new(name => $name, dir => $t->dir,
		tls => { cert => $cert->[0], key => $cert->[1] });
}
my $good = tls_backend('good', \@bgood);
my $rev = tls_backend('rev', \@brev);

my $crl_bob = $pki->crl($bob[0]);
my $crl_bob_carol = $pki->crl($bob[0], $carol[0]);
my $crl_expired = $pki->crl($bob[0], { expired => 1 });
my $crl_other = $pki->crl($bob[0]); # same revocations, another file
my $up_crl = $pki->crl($brev[0]);
my $CRL = $t->dir . '/crl.pem';
sub install_crl { $t->write_file($CRL, $t->read_file($_[0]), 0644) }
install_crl($crl_bob);

my $UPTLS = qq{ca = "$ca"; server_name = "backend.test"; crl = "$up_crl";};
$t->config(<<"EOF")->run;
tls = { certificates = ( { cert = "$srv_crt"; key = "$srv_key"; } );
        client_ca = "$ca";
        crl = "$CRL"; };
upstreams = {
  upgood = { servers = ( { address = "${\ $good->addr}"; } ); tls = { $UPTLS }; };
  uprev = { servers = ( { address = "${\ $rev->addr}"; max_fails = 0; } );
            tls = { $UPTLS }; };
};
servers = (
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "mtls.test";
    tls = { verify_client = "on"; };
    locations = ( { path = "/"; proxy_pass = "http://127.0.0.1:%%PORT_5%%";
      proxy_set_header = { X-Client-Verify = "\$ssl_client_verify"; }; },
      { path = "/r"; return = "200 in \$ssl_client_verify \$ssl_session_reused"; } ); },
  { listen = "127.0.0.1:%%PORT_1%% ssl"; server_name = "mtls.test";
    tls = { verify_client = "optional"; };
    locations = ( { path = "/"; return = "200 \$ssl_client_verify|\$ssl_client_s_dn"; } ); },
  { listen = "127.0.0.1:%%PORT_2%% ssl"; server_name = "a.test";
    tls = { verify_client = "optional"; };
    return = "200 a"; },
  { listen = "127.0.0.1:%%PORT_2%% ssl"; server_name = "b.test";
    tls = { verify_client = "optional"; crl = "$crl_other"; };
    return = "200 b"; },
  { listen = "127.0.0.1:%%PORT_2%% ssl"; server_name = "c.test";
    tls = { verify_client = "optional"; };
    return = "200 c"; },
  { listen = "127.0.0.1:%%PORT_3%%";
    locations = ( { path = "/good/"; proxy_pass = "upgood"; },
                  { path = "/rev/"; proxy_pass = "uprev"; } ); }
);
EOF
my ($ON, $OPT, $SNI, $PLAIN) = map { $t->port($_) } 0 .. 3;
my $conf = $t->conf_path;
my @lines = split /\n/, $t->read_file($conf);
my ($CRL_LINE) = grep { $lines[$_ - 1] =~ /^\s*crl = / } 1 .. @lines;

sub at_backend {
	my ($path) = @_;
	my ($q) = grep { ($_->{path} // '') eq $path } $b->requests;
	return $q;
}
sub refused {
	my ($r) = @_;
	return (!$r->{handshake} || $r->{status} == 0 || $r->{status} == 400)
		&& $r->{status} != 200;
}
sub opt_verify {
	my (@cert) = @_;
	my $r = tls_get($OPT, '/', sni => 'mtls.test',
		@cert ? (cert => $cert[0], key => $cert[1]) : ());
	return $r->{status} == 200 ? $r->{body} : "status $r->{status}";
}

# ---- verify_client "on" ---------------------------------------------------------

for my $v ('TLSv1_3', 'TLSv1_2') {
	my $r = tls_get($ON, "/on-bob-$v", sni => 'mtls.test', version => $v,
		cert => $bob[0], key => $bob[1]);
	ok(refused($r), "on, $v: a revoked certificate is refused")
		or diag("status $r->{status}");
	$r = tls_get($ON, "/on-alice-$v", sni => 'mtls.test', version => $v,
		cert => $alice[0], key => $alice[1]);
	is($r->{status}, 200, "on, $v: an unrevoked certificate of the CA: 200");
	is((at_backend("/on-alice-$v") // { header => {} })->{header}{'x-client-verify'},
		'SUCCESS', "on, $v: SUCCESS at the backend");
}
ok(!grep({ $_->{path} =~ /bob/ } $b->requests),
	'on: the revoked client never reaches the backend');
ok($t->wait_log(qr/\[info\].*client certificate refused: certificate revoked \(depth 0\)/),
	'on: the info log gives the reason: certificate revoked');
ok($t->wait_log(qr/TLS handshake failed.*client: 127\.0\.0\.1/),
	'on: the failed handshake is logged');

# ---- verify_client "optional" ---------------------------------------------------

is(opt_verify(@bob), "FAILED:certificate revoked|CN=bob,O=portier test",
	'optional, revoked: served, $ssl_client_verify FAILED:certificate revoked');
is(opt_verify(@alice), 'SUCCESS|CN=alice,O=portier test',
	'optional, unrevoked: SUCCESS');
like(opt_verify(@mallory), qr/^FAILED:\S/, 'optional, another CA: FAILED');
is(opt_verify(), 'NONE|', 'optional, no certificate: NONE');

# ---- 421: a Host whose server has another crl -------------------------------------

{
	my %got;
	for my $host (qw(a.test b.test c.test)) {
		my $r = tls_get($SNI, '/', sni => 'a.test', host => $host,
			cert => $alice[0], key => $alice[1]);
		$got{$host} = $r->{status};
	}
	is($got{'a.test'}, 200, 'SNI a, Host a: 200');
	is($got{'b.test'}, 421, 'SNI a, Host b (another crl file): 421');
	is($got{'c.test'}, 200, 'SNI a, Host c (the same crl): 200');
}

# ---- sessions across a HUP to a CRL that revokes the client ---------------------

my %VERSIONS = ('TLSv1.2' => 'TLSv1_2', 'TLSv1.3' => 'TLSv1_3');
my %cctx;
for my $v (sort keys %VERSIONS) {
	$cctx{$v} = IO::Socket::SSL::SSL_Context->new(
		SSL_version => $VERSIONS{$v}, SSL_verify_mode => SSL_VERIFY_NONE,
		SSL_cert_file => $carol[0], SSL_key_file => $carol[1],
		SSL_session_cache_size => 4) || die "client context: $SSL_ERROR";
}
# One request as carol with the session kept in her context: (reused by
# the client's account, the body, or '' when refused).
sub carol {
	my ($v) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ON,
		Timeout => 5) or return (0, '');
	IO::Socket::SSL->start_SSL($s, SSL_reuse_ctx => $cctx{$v},
		SSL_hostname => 'mtls.test', SSL_session_key => "carol-$v",
		Timeout => 5) or return (0, '');
	my $reused = $s->get_session_reused ? 1 : 0;
	print $s "GET /r HTTP/1.1\r\nHost: mtls.test\r\nConnection: close\r\n\r\n";
	my $resp = '';
	my $sel = IO::Select->new($s);
	my $end = time + 5;
	while (time < $end) {
		my $n = sysread($s, $resp, 4096, length $resp);
		last if defined $n && $n == 0;
		next if defined $n;
		last unless $!{EAGAIN} || $!{EWOULDBLOCK};
		$sel->can_read(1);
	}
	close $s;
	my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
	return ($reused, $resp =~ m{^HTTP/1\.1 200 } ? $body : '');
}
sub hup {
	my @old = $t->wait_workers(1);
	$t->signal('HUP');
	ok(!grep({ !PortierTest::wait_exit($_) } @old), "$_[0]: old worker exits");
	$t->wait_workers(1);
}

for my $v (sort keys %VERSIONS) {
	my ($reused, $body) = carol($v);
	is($body, 'in SUCCESS .', "$v: carol, not revoked: full handshake, 200");
	($reused, $body) = carol($v);
	is("$reused $body", '1 in SUCCESS r', "$v: carol's session resumes");
}
hup('HUP with the same CRL');
for my $v (sort keys %VERSIONS) {
	my ($reused, $body) = carol($v);
	is("$reused $body", '1 in SUCCESS r',
		"$v: after a HUP with the same CRL, the session still resumes");
}
install_crl($crl_bob_carol);
hup('HUP with a CRL that revokes carol');
for my $v (sort keys %VERSIONS) {
	my ($reused, $body) = carol($v);
	is($reused, 0, "$v: carol's saved session is not resumed");
	is($body, '', "$v: carol, now revoked: refused");
	($reused, $body) = carol($v);
	is("$reused $body", '0 ', "$v: carol again: refused");
}
{
	my $r = tls_get($ON, '/on-alice-after', sni => 'mtls.test',
		cert => $alice[0], key => $alice[1]);
	is($r->{status}, 200, 'after the HUP, alice still gets in');
	is(opt_verify(@carol), "FAILED:certificate revoked|CN=carol,O=portier test",
		'optional: carol is now FAILED:certificate revoked');
}

# ---- an expired CRL ------------------------------------------------------------------

{
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	is($rc, 0, '-t with a fresh CRL: success') or diag($err);
	install_crl($crl_expired);
	($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	is($rc, 0, '-t with an expired CRL: success (a warning only)') or diag($err);
	like($err, qr/\Q$conf\E:$CRL_LINE: warning: tls: crl "\Q$CRL\E": the CRL of .* expired on /,
		'-t with an expired CRL: the warning, with file:line') or diag($err);
	is(scalar(() = $err =~ /expired on /g), 1,
		'-t with an expired CRL: one warning, not one per server');
	hup('HUP with an expired CRL');
	ok($t->wait_log(qr/\[warn\].*\Q$conf\E:$CRL_LINE: tls: crl "\Q$CRL\E": the CRL of .*expired on .*CRL has expired/),
		'HUP with an expired CRL: warning in the error log');
	my $r = tls_get($ON, '/on-alice-expired', sni => 'mtls.test',
		cert => $alice[0], key => $alice[1]);
	ok(refused($r), 'on, expired CRL: alice refused') or diag("status $r->{status}");
	ok($t->wait_log(qr/client certificate refused: CRL has expired/),
		'on, expired CRL: the reason in the log');
	is(opt_verify(@alice), 'FAILED:CRL has expired|CN=alice,O=portier test',
		'optional, expired CRL: FAILED:CRL has expired');
	install_crl($crl_bob);
	hup('HUP with a fresh CRL again');
	$r = tls_get($ON, '/on-alice-fresh', sni => 'mtls.test',
		cert => $alice[0], key => $alice[1]);
	is($r->{status}, 200, 'a fresh CRL again: alice gets in');
}

# ---- bad files: -t and HUP refuse them, the old configuration serves --------------

sub reload_failures { () = ($t->read_file('error.log') // '') =~ /reload failed/g }
for my $case (
	[ 'a missing file', sub { unlink $CRL }, qr/No such file/ ],
	[ 'an empty file', sub { $t->write_file($CRL, '') }, qr/no CRL in the file/ ],
	[ 'a file of certificates', sub { install_crl($ca) }, qr/no CRL in the file/ ],
	[ 'random bytes', sub {
		$t->write_file($CRL, join '', map { chr int rand 256 } 1 .. 800) },
	  qr/no CRL in the file/ ],
	[ 'a CRL that does not parse', sub {
		$t->write_file($CRL, "-----BEGIN X509 CRL-----\nMIIBAAAA\n"
			. "-----END X509 CRL-----\n") }, qr/CRL 1: / ],
	[ 'a good CRL, then a broken one', sub {
		$t->write_file($CRL, $t->read_file($crl_bob)
			. "-----BEGIN X509 CRL-----\nnot base64 at all\n"
			. "-----END X509 CRL-----\n") }, qr/CRL 2: / ],
) {
	my ($what, $break, $why) = @$case;
	install_crl($crl_bob);
	$break->();
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	isnt($rc, 0, "-t with $what: fails");
	like($err, qr/\Q$conf\E:$CRL_LINE: tls: crl "\Q$CRL\E": .*$why/,
		"-t with $what: file:line and the cause") or diag($err);
	my $fails = reload_failures();
	my @w = $t->wait_workers(1);
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { reload_failures() > $fails }),
		"HUP with $what: reload refused");
	ok($t->log_has(qr/\Q$conf\E:$CRL_LINE: tls: crl /),
		"HUP with $what: file:line in the log");
	my $r = tls_get($ON, '/on-bob-kept', sni => 'mtls.test',
		cert => $bob[0], key => $bob[1]);
	ok(refused($r), "HUP with $what: the old CRL still refuses bob");
	is(opt_verify(@alice), 'SUCCESS|CN=alice,O=portier test',
		"HUP with $what: alice still served");
	is_deeply([ $t->wait_workers(1) ], \@w, "HUP with $what: same worker");
}
install_crl($crl_bob);

# ---- config checks ------------------------------------------------------------------

{
	my $srv = 'return = "200 x";';
	my $certs = qq(certificates = ( { cert = "$srv_crt"; key = "$srv_key"; } ););
	for my $case (
		[ 'crl without client_ca in the server',
		  qq(tls = { $certs };\n)
		  . qq|servers = ( { listen = "127.0.0.1:1 ssl"; $srv\n|
		  . qq|  tls = { crl = "$crl_bob"; }; } );\n|, 4,
		  qr/tls: crl needs client_ca/ ],
		[ 'crl without client_ca in the server, client_ca elsewhere',
		  qq(tls = { $certs };\n)
		  . qq|servers = ( { listen = "127.0.0.1:1 ssl"; $srv\n|
		  . qq|  tls = { crl = "$crl_bob"; }; },\n|
		  . qq|  { listen = "127.0.0.1:1 ssl"; server_name = "x"; $srv|
		  . qq| tls = { client_ca = "$ca"; }; } );\n|, 4,
		  qr/tls: crl needs client_ca/ ],
		[ 'an empty crl name',
		  qq(tls = { $certs client_ca = "$ca";\n  crl = ""; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1 ssl"; $srv } );\n), 3,
		  qr/empty file name/ ],
		[ 'an upstream crl without verify',
		  qq(upstreams = { u = { servers = ( { address = "127.0.0.1:1"; } );\n)
		  . qq(  tls = { verify = false;\n  crl = "$up_crl"; }; }; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );\n),
		  4, qr/"crl" needs "verify"/ ],
		[ 'an upstream crl file that is not a CRL',
		  qq(upstreams = { u = { servers = ( { address = "127.0.0.1:1"; } );\n)
		  . qq(  tls = { ca = "$ca"; server_name = "x";\n  crl = "$ca"; }; }; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );\n),
		  4, qr/tls: crl "\Q$ca\E": no CRL in the file/ ],
		[ 'an upstream crl file that is missing',
		  qq(upstreams = { u = { servers = ( { address = "127.0.0.1:1"; } );\n)
		  . qq(  tls = { ca = "$ca"; server_name = "x";\n  crl = "nonexistent.pem"; }; }; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );\n),
		  4, qr/tls: crl ".*nonexistent\.pem": No such file/ ],
	) {
		my ($what, $text, $line, $msg) = @$case;
		my $f = $t->write_file('check.conf', "worker_processes = 1;\n$text");
		my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $f);
		isnt($rc, 0, "-t, $what: fails");
		like($err, qr/\Q$f\E:$line: .*$msg/,
			"-t, $what: file:line and the cause") or diag($err);
	}
	# the main level's crl and client_ca merge into a server
	my $f = $t->write_file('check.conf', "worker_processes = 1;\n"
		. qq(tls = { $certs crl = "$crl_bob"; };\n)
		. qq|servers = ( { listen = "127.0.0.1:1 ssl"; $srv|
		. qq| tls = { client_ca = "$ca"; verify_client = "on"; }; } );\n|);
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $f);
	is($rc, 0, '-t: crl at main level, client_ca in the server: merged')
		or diag($err);
	# ... and a server that verifies no client has no use for it
	$f = $t->write_file('check.conf', "worker_processes = 1;\n"
		. qq(tls = { $certs crl = "$crl_bob"; };\n)
		. qq|servers = ( { listen = "127.0.0.1:1 ssl"; $srv },\n|
		. qq|  { listen = "127.0.0.1:1 ssl"; server_name = "v"; $srv|
		. qq| tls = { client_ca = "$ca"; verify_client = "on"; }; } );\n|);
	($rc, undef, $err) = $t->run_cmd('-t', '-c', $f);
	is($rc, 0, '-t: crl at main level, a server without client_ca: '
		. 'accepted') or diag($err);
}

# ---- upstreams ---------------------------------------------------------------------

{
	my $r = $t->get('/good/', port => $PLAIN, timeout => 10);
	is($r->{status}, 200, 'upstream: a backend whose certificate is not revoked: 200');
	is($r->{body}, "good\n", 'upstream: its answer');
	$r = $t->get('/rev/', port => $PLAIN, timeout => 10);
	is($r->{status}, 502, 'upstream: a backend whose certificate is revoked: 502');
	ok($t->wait_log(qr/\[error\].*upstream "uprev" peer 127\.0\.0\.1:${\ $rev->port}: TLS handshake failed: certificate verify failed: certificate revoked/),
		'upstream: the error log says certificate revoked');
	ok(!grep({ ($_->{path} // '') =~ m{^/rev} } $rev->requests),
		'upstream: no request reached the revoked backend');
}

ok(!$t->log_has(qr/\[(alert|emerg|crit)\]/), 'no alert in the error log');

$b->stop;
$good->stop;
$rev->stop;
done_testing;
