#!/usr/bin/perl
# TLS termination, defects found in review (issue 4), each shown by a
# case that failed before its fix:
#
# - SNI with bytes no host name has (CR LF, space, controls, non-ASCII):
#   OpenSSL refuses only NUL, and took the rest as $ssl_server_name, so a
#   proxy_set_header carrying it split the backend's request head. Such a
#   handshake is now refused (as nginx refuses a bad Host); odd but
#   harmless names (a port, a '*', 255 bytes) still get the default server.
#
# - SSL_read() that needs to write (a TLS 1.3 key update to answer, the
#   socket full): it was taken for EAGAIN on the read side, so the
#   connection waited for readability while OpenSSL waited for
#   writability, and hung until a timeout. t/tls_keyupdate (C: Perl can
#   not ask for key updates) fills the server's socket with its answers
#   to key updates, then sends a request.
#
# - A server chosen by SNI whose address's default server has neither
#   session cache nor tickets got no TLS 1.3 ticket (SSL_new() took the
#   default server's ticket count, 0, and the SNI switch did not copy it),
#   so its sessions never resumed.
#
# And, as checks that found nothing: a TLS 1.2 renegotiation attempt is
# refused and the worker serves on; a client that sends a request, then
# close_notify, then bytes, gets its response and the connection closes.
#
# Every wait is a bounded poll.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierTLS;
use PortierTLSClient;
use PortierBackend;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time);
use Test::More;

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;
my $dir = $t->dir;
my $pki = PortierTLS->new("$dir/pki");
my ($crt, $key) = $pki->server('ec', 'a.test');
my $b1 = PortierBackend->new(name => 'b1', dir => $dir);
my $B = $b1->port;

$t->config(<<"EOF")->run;
client_header_timeout = "60s";
keepalive_timeout = "60s";
tls = { certificates = ( { cert = "$crt"; key = "$key"; } ); };
servers = (
  { listen = [ "127.0.0.1:%%PORT_0%% ssl", "unix:%%DIR%%/tls.sock ssl" ];
    server_name = "a.test";
    locations = (
      { path = "/echo"; proxy_pass = "http://127.0.0.1:$B";
        proxy_set_header = { X-SNI = "[\$ssl_server_name]"; }; },
      { path = "/"; return = "200 A [\$ssl_server_name]"; } ); },
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "b.test";
    locations = ( { path = "/"; return = "200 B [\$ssl_server_name]"; } ); },
  { listen = "127.0.0.1:%%PORT_1%% ssl"; server_name = "a.test";
    tls = { session_cache = "off"; session_tickets = false; };
    return = "200 A \$ssl_session_reused"; },
  { listen = "127.0.0.1:%%PORT_1%% ssl"; server_name = "b.test";
    return = "200 B \$ssl_session_reused"; }
);
EOF
my $P = $t->port(0);

# ---- SNI -------------------------------------------------------------------

my $r = tls_get($P, '/', sni => 'b.test');
is("$r->{status} $r->{body}", '200 B [b.test]', 'SNI: a plain name');

for my $bad ("a.test\r\nX-Injected: 1", "a test", "a.test\x01",
	"a.t\x{e9}st", "a.test/x") {
	(my $show = $bad) =~ s/([^\x21-\x7e])/sprintf('\\x%02x', ord $1)/ge;
	my $before = () = ($t->read_file('error.log') // '')
		=~ /SNI name holds bytes/g;
	$r = tls_get($P, '/echo/', sni => $bad, host => 'a.test');
	is($r->{handshake}, 0, "SNI \"$show\": the handshake is refused");
	unlike($r->{raw}, qr/X-Injected/i,
		"SNI \"$show\": nothing reaches a header");
	ok(PortierTest::wait_for(sub {
		my $n = () = ($t->read_file('error.log') // '')
			=~ /\[info\].*SNI name holds bytes.*client: 127\.0\.0\.1/g;
		$n > $before }, 5), "SNI \"$show\": logged at info");
}
my @seen = grep { exists $_->{header}{"x-injected"} } $b1->requests;
is(scalar @seen, 0, 'SNI: no request with an injected field reached the backend');

# odd names no host has, but harmless: the default server answers
for my $odd ('a.test:443', '*.a.test', 'x' x 255) {
	$r = tls_get($P, '/', sni => $odd, host => 'a.test');
	is("$r->{status} " . substr($r->{body}, 0, 3), '200 A [',
		'SNI "' . substr($odd, 0, 12) . '": the default server');
}
$r = tls_get($P, '/', sni => 'B.TEST.', host => 'b.test');
is($r->{status} . ' ' . substr($r->{body}, 0, 1), '200 B',
	'SNI: upper case and a trailing dot find the server');

# ---- sessions of a server chosen by SNI ---------------------------------------

my $sess = "$dir/b.sess";
my $req = "GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n";
for my $v ('-tls1_3', '-tls1_2') {
	unlink $sess;
	my $o = s_client($t->port(1), [ '-servername', 'b.test', $v,
		'-sess_out', $sess ], request => $req);
	is($o->{status}, 200, "SNI server, $v: first connection");
	my $o2 = s_client($t->port(1), [ '-servername', 'b.test', $v,
		'-sess_in', $sess ], request => $req);
	is($o2->{reused}, 1, "SNI server, $v: the session resumes although "
		. 'the default server keeps none');
}
my $o = s_client($t->port(1), [ '-servername', 'a.test', '-tls1_3',
	'-sess_out', $sess ], request => $req =~ s/b\.test/a.test/r);
unlike($o->{out}, qr/TLS session ticket:/,
	'the default server still gives no ticket');

# ---- renegotiation, close_notify then data -----------------------------------

{
	my ($s, $err) = tls_connect($P, sni => 'a.test', version => 'TLSv1_2');
	ok($s, 'TLS 1.2 connection') or diag($err);
	my $x = tls_request($s, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
	is($x->{status}, 200, 'TLS 1.2: a first request');
	my $ssl = $s->_get_ssl_object;
	Net::SSLeay::renegotiate($ssl);
	$s->blocking(1);
	my $rc = Net::SSLeay::do_handshake($ssl);
	isnt($rc, 1, 'a renegotiation is refused');
	$s->close(SSL_fast_shutdown => 1);
	$r = tls_get($P, '/', sni => 'a.test');
	is($r->{status}, 200, 'after a renegotiation attempt the worker serves');
}
{
	my ($s, $err) = tls_connect($P, sni => 'a.test');
	my $ssl = $s->_get_ssl_object;
	$s->blocking(1);
	Net::SSLeay::write($ssl, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
	Net::SSLeay::shutdown($ssl); # close_notify
	POSIX::write(fileno($s), "GET /x HTTP/1.1\r\n\r\n" x 10, 220);
	my ($buf, $end) = ('', time() + 5);
	$s->blocking(0);
	my $sel = IO::Select->new($s);
	while (time() < $end) {
		my $d = Net::SSLeay::read($ssl);
		if (defined $d && length $d) {
			$buf .= $d;
			next;
		}
		my $e = Net::SSLeay::get_error($ssl, -1);
		last if $e != Net::SSLeay::ERROR_WANT_READ();
		$sel->can_read($end - time());
	}
	like($buf, qr{^HTTP/1.1 200}, 'close_notify then bytes: the response came');
	unlike($buf, qr{HTTP/1.1 200.*HTTP/1.1}s,
		'and nothing after close_notify was served');
	$s->close(SSL_no_shutdown => 1);
}

# ---- SSL_read() that wants to write ------------------------------------------

my $bin = PortierTest::binary();
(my $ku = $bin) =~ s{src/portier$}{t/tls_keyupdate};
ok(-x $ku, "the key update client is built ($ku; make check builds it, or make t/tls_keyupdate)");
my $out = `"$ku" "$dir/tls.sock" a.test 2>&1`;
is($? >> 8, 0, "key updates against a full socket: the request is answered") or diag($out);
like($out, qr/stopped reading/, 'the server\'s socket did fill up');
like($out, qr{^HTTP/1.1 200}m, 'the response is a 200');
$r = tls_get($P, '/', sni => 'a.test');
is($r->{status}, 200, 'the worker still serves');

done_testing;
