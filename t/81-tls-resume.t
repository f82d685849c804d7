#!/usr/bin/perl
# TLS session resumption across workers (shared session cache and ticket
# keys in shared memory). Four workers (reuseport: the kernel spreads
# the connections); for each way to resume — the
# session cache alone (session_tickets = false: TLS 1.2 session ids and
# TLS 1.3 stateful tickets), tickets alone (session_cache = "off") and
# both (the default) — and for TLS 1.3 and 1.2, one TCP connection is
# opened to each worker (its owner found from /proc), a full handshake is
# made with one of them and every other one resumes that session:
# IO::Socket::SSL says so and the server's $ssl_session_reused is "r".
# Then a HUP: the new workers resume the sessions made with the old ones
# (the zones, with the sessions and the keys, are carried over).
# "sni" is a server reached by SNI behind a default server with neither
# cache nor tickets: OpenSSL calls the default's session callbacks.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use PortierTLS;
use PortierTLSClient;
use IO::Socket::SSL;
use Test::More;

my $WORKERS = 4;
my $t = PortierTest->new;
my $pki = PortierTLS->new($t->dir . '/pki');
my ($crt, $key) = $pki->server('ec', 'both.test', 'cache.test', 'tickets.test',
	'sni.test', 'default.test');

my $RET = '$ssl_session_reused $ssl_protocol';
$t->config(<<"EOF")->run(workers => $WORKERS);
worker_processes = $WORKERS;
tls = { certificates = ( { cert = "$crt"; key = "$key"; } ); };
servers = (
  { listen = "127.0.0.1:%%PORT_0%% ssl reuseport"; server_name = "both.test";
    locations = ( { path = "/"; return = "200 both $RET"; } ); },
  { listen = "127.0.0.1:%%PORT_1%% ssl reuseport"; server_name = "cache.test";
    tls = { session_tickets = false; };
    locations = ( { path = "/"; return = "200 cache $RET"; } ); },
  { listen = "127.0.0.1:%%PORT_2%% ssl reuseport"; server_name = "tickets.test";
    tls = { session_cache = "off"; };
    locations = ( { path = "/"; return = "200 tickets $RET"; } ); },
  { listen = "127.0.0.1:%%PORT_3%% ssl reuseport"; server_name = "default.test";
    tls = { session_cache = "off"; session_tickets = false; };
    locations = ( { path = "/"; return = "200 default $RET"; } ); },
  { listen = "127.0.0.1:%%PORT_3%% ssl"; server_name = "sni.test";
    tls = { session_tickets = false; };
    locations = ( { path = "/"; return = "200 sni $RET"; } ); }
);
EOF

my %MODES = (both => 0, cache => 1, tickets => 2, sni => 3); # name => port index
my %VERSIONS = ('TLSv1.3' => 'TLSv1_3', 'TLSv1.2' => 'TLSv1_2');

# A client context per mode and version, each with its session cache.
my %ctx;
sub client_ctx {
	my ($mode, $version) = @_;
	return $ctx{"$mode $version"} //= IO::Socket::SSL::SSL_Context->new(
		SSL_version => $VERSIONS{$version},
		SSL_ca_file => $pki->ca,
		SSL_verify_mode => SSL_VERIFY_PEER,
		SSL_session_cache_size => 4,
	) || die "client context: $SSL_ERROR";
}

# TLS on the raw socket s, one request: (reused by the client's account,
# the body: "MODE REUSED PROTOCOL"), or () when the handshake failed.
sub resume_on {
	my ($s, $mode, $version) = @_;
	my $name = "$mode.test";
	IO::Socket::SSL->start_SSL($s,
		SSL_reuse_ctx => client_ctx($mode, $version),
		SSL_hostname => $name,
		SSL_verifycn_name => $name,
		SSL_verifycn_scheme => 'http',
		SSL_session_key => $mode,
		Timeout => 5,
	) or return ();
	my $reused = $s->get_session_reused ? 1 : 0;
	print $s "GET / HTTP/1.1\r\nHost: $name\r\nConnection: close\r\n\r\n";
	my $resp = '';
	while (1) {
		my $n = sysread($s, $resp, 4096, length $resp);
		last unless $n;
	}
	close $s;
	my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
	return ($reused, $body // '');
}

# Every worker of @workers resumes a session of $mode/$version; with
# $fresh the first one makes it in a full handshake.
sub check_workers {
	my ($label, $fresh, @workers) = @_;
	for my $mode (sort keys %MODES) {
		for my $version (sort keys %VERSIONS) {
			my $port = $t->port($MODES{$mode});
			my $by = PortierHTTP::conn_per_worker_on($t, $port, @workers);
			is(scalar keys %$by, scalar @workers,
				"$label $mode $version: a connection per worker");
			my @order = sort { $a <=> $b } keys %$by;
			if ($fresh) {
				my $w = shift @order;
				my ($reused, $body) =
					resume_on($by->{$w}, $mode, $version);
				is($body, "$mode . $version",
					"$label $mode $version: full handshake "
					. "with worker $w");
			}
			for my $w (@order) {
				my ($reused, $body) =
					resume_on($by->{$w}, $mode, $version);
				ok($reused, "$label $mode $version: worker $w "
					. "resumed (client)");
				is($body, "$mode r $version",
					"$label $mode $version: worker $w "
					. "resumed (\$ssl_session_reused)");
			}
		}
	}
}

my @old = $t->wait_workers($WORKERS);
is(scalar @old, $WORKERS, "$WORKERS workers");
check_workers('across workers:', 1, @old);

# ---- a reload keeps the cache and the keys -------------------------------

$t->signal('HUP');
ok(PortierTest::wait_exit($_), "HUP: old worker $_ exits") for @old;
my @new = $t->wait_workers($WORKERS);
is(scalar @new, $WORKERS, "HUP: $WORKERS new workers");
ok(!grep({ my $n = $_; grep { $_ == $n } @old } @new), 'HUP: all of them new');
check_workers('after HUP:', 0, @new);

# A server with neither cache nor tickets sends no TLS 1.3 ticket (it
# would be a useless message for both sides); one reached by SNI behind
# it with a cache still sends its own.
{
	my $req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	my $tickets = sub {
		my ($name) = @_;
		my $o = s_client($t->port(3), [ '-servername', $name, '-tls1_3' ],
			request => $req);
		ok($o->{handshake}, "$name: TLS 1.3 handshake");
		my @n = $o->{out} =~ /^Post-Handshake New Session Ticket arrived/mg;
		return scalar @n;
	};
	is($tickets->('default.test'), 0,
		'neither cache nor tickets: no TLS 1.3 ticket sent');
	ok($tickets->('sni.test') > 0,
		'a server with a cache reached by SNI behind it: tickets sent');
}

ok(!$t->log_has(qr/\[(?:crit|alert|emerg)\]/), 'no critical errors logged');
$t->stop;

# ---- a HUP that makes client certificates required -----------------------
# A session made without a client certificate under verify_client
# "optional" must not resume once a HUP made it "on": it would reach
# the location without any certificate.

my $m = PortierTest->new;
my $CA = $pki->ca;
sub mtls_config {
	my ($verify) = @_;
	$m->config(<<"EOF2");
tls = { certificates = ( { cert = "$crt"; key = "$key"; } );
        client_ca = "$CA"; verify_client = "$verify"; };
servers = (
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "both.test";
    locations = ( { path = "/"; return = "200 in \$ssl_client_verify \$ssl_session_reused"; } ); }
);
EOF2
}
mtls_config('optional');
$m->run;
for my $version (sort keys %VERSIONS) {
	my $cctx = IO::Socket::SSL::SSL_Context->new(
		SSL_version => $VERSIONS{$version},
		SSL_ca_file => $pki->ca,
		SSL_verify_mode => SSL_VERIFY_PEER,
		SSL_session_cache_size => 4,
	) || die "client context: $SSL_ERROR";
	my $get = sub {
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
			PeerPort => $m->port(0), Timeout => 5) or return '';
		IO::Socket::SSL->start_SSL($s, SSL_reuse_ctx => $cctx,
			SSL_hostname => 'both.test',
			SSL_verifycn_name => 'both.test',
			SSL_verifycn_scheme => 'http',
			SSL_session_key => 'mtls', Timeout => 5) or return '';
		print $s "GET / HTTP/1.1\r\nHost: both.test\r\n"
			. "Connection: close\r\n\r\n";
		my $resp = '';
		while (1) {
			my $n = sysread($s, $resp, 4096, length $resp);
			last unless $n;
		}
		close $s;
		return $resp;
	};
	if ($version ne 'TLSv1.2') { # back to "optional"
		my @old = $m->wait_workers(1);
		mtls_config('optional');
		$m->signal('HUP');
		PortierTest::wait_exit($_) for @old;
	}
	my @w = $m->wait_workers(1);
	like($get->(), qr/\r\n\r\nin NONE \.\z/,
		"mTLS $version: optional, no certificate: full handshake");
	like($get->(), qr/\r\n\r\nin NONE r\z/,
		"mTLS $version: optional: the session resumes");
	mtls_config('on');
	$m->signal('HUP');
	ok(PortierTest::wait_exit($_), "mTLS $version: HUP: old worker exits")
		for @w;
	$m->wait_workers(1);
	unlike($get->(), qr/\r\n\r\nin /,
		"mTLS $version: after a HUP to \"on\", the session made "
		. "without a certificate does not get in");
}
$m->stop;
done_testing;
