package PortierTLSClient;

# TLS clients for the termination tests (t/83..t/86): a Perl client
# (IO::Socket::SSL) that reports what was negotiated and which
# certificate the server showed, an `openssl s_client` runner with its
# output parsed (for what the Perl client can not choose: signature
# algorithms, TLS 1.0, sessions kept in a file), and a real ClientHello
# captured from a client, for the broken-handshake tests. Every wait is
# bounded; nothing here sleeps a fixed time.
#
#   my $r = tls_get($port, '/', sni => 'a.test');       # a hash, below
#   my ($s, $err) = tls_connect($port, sni => 'a.test', version => 'TLSv1_2',
#       cert => $crt, key => $key, alpn => ['http/1.1']);
#   my $r = tls_request($s, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
#   my $o = s_client($port, ['-servername', 'a.test', '-tls1_2'],
#       request => "GET / ...");
#   my $hello = client_hello(sni => 'a.test');          # raw bytes
#
# tls_get and tls_request return the parsed response of PortierTest
# (status, headers, body, raw) plus: handshake (1 if it completed),
# error (the client's reason when it did not), eof (the server closed),
# and the session's protocol, cipher, alpn, cn, subject, san (list),
# serial (hex), reused.

use strict;
use warnings;

use Exporter qw(import);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL qw(SSL_VERIFY_NONE SSL_VERIFY_PEER);
use Net::SSLeay;
use POSIX qw(:sys_wait_h _exit);
use Time::HiRes qw(time);
use PortierTest;

our @EXPORT = qw(tls_connect tls_get tls_request tls_session_info
	s_client client_hello);

$SIG{PIPE} = 'IGNORE';

my $TMP;

# A TLS connection to 127.0.0.1:port. Options: sni (a name; none when
# absent), version (IO::Socket::SSL's SSL_version: 'TLSv1_2', 'TLSv1_3'),
# cipher (SSL_cipher_list), cert and key (a client certificate), alpn
# (list of protocols), ca (verify the server against it, name = sni),
# timeout (default 5). Returns (socket, undef) or (undef, reason).
sub tls_connect {
	my ($port, %o) = @_;
	my %args = (
		PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
		Timeout => $o{timeout} // 5,
		SSL_hostname => $o{sni} // '',
		SSL_verify_mode => SSL_VERIFY_NONE,
	);
	$args{SSL_version} = $o{version} if $o{version};
	$args{SSL_cipher_list} = $o{cipher} if $o{cipher};
	@args{qw(SSL_cert_file SSL_key_file)} = @o{qw(cert key)} if $o{cert};
	$args{SSL_alpn_protocols} = $o{alpn} if $o{alpn};
	$args{SSL_session_cache} = $o{session_cache} if $o{session_cache};
	$args{SSL_session_key} = $o{session_key} if $o{session_key};
	if ($o{ca}) {
		$args{SSL_verify_mode} = SSL_VERIFY_PEER;
		$args{SSL_ca_file} = $o{ca};
		$args{SSL_verifycn_name} = $o{sni};
		$args{SSL_verifycn_scheme} = 'http';
	}
	my $s = IO::Socket::SSL->new(%args);
	return ($s, undef) if $s;
	return (undef, $IO::Socket::SSL::SSL_ERROR || $! || 'unknown error');
}

# What a connected TLS socket negotiated, and the server's certificate.
sub tls_session_info {
	my ($s) = @_;
	my %i = (handshake => 1, protocol => $s->get_sslversion,
		cipher => $s->get_cipher, alpn => $s->alpn_selected // '',
		reused => $s->get_session_reused ? 1 : 0);
	$i{cn} = $s->peer_certificate('commonName') // '';
	$i{subject} = $s->peer_certificate('subject') // '';
	my @san = $s->peer_certificate('subjectAltNames');
	my @names;
	while (my ($type, $v) = splice(@san, 0, 2)) {
		push @names, $v if $type == 2; # GEN_DNS
	}
	$i{san} = \@names;
	my $x = $s->peer_certificate;
	$i{serial} = $x ? Net::SSLeay::P_ASN1_INTEGER_get_hex(
		Net::SSLeay::X509_get_serialNumber($x)) : '';
	return \%i;
}

# Send bytes on a TLS socket and read one response ($o{count} of them,
# or until the close when $o{until_eof}), within $o{timeout} seconds
# (default 5); raw holds every byte read. The
# result as tls_get's; status 0 when nothing complete came.
sub tls_request {
	my ($s, $bytes, %o) = @_;
	my $head_only = $bytes =~ /^HEAD /;
	my $info = tls_session_info($s);
	$s->blocking(1);
	my $off = 0;
	while ($off < length $bytes) {
		my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
		last unless $n;
		$off += $n;
	}
	my ($buf, $eof, $err) = ('', 0, undef);
	$s->blocking(0);
	my $sel = IO::Select->new($s);
	my $end = time() + ($o{timeout} // 5);
	while (1) {
		last if !$o{until_eof}
			&& _complete($buf, $head_only) >= ($o{count} // 1);
		my $n = sysread($s, $buf, 65536, length $buf);
		if (defined $n) {
			if ($n == 0) {
				$eof = 1;
				last;
			}
			next;
		}
		if ($! && !$!{EAGAIN} && !$!{EWOULDBLOCK}) {
			($err, $eof) = ("$! " . ($IO::Socket::SSL::SSL_ERROR // ''), 1);
			last;
		}
		my $left = $end - time();
		last if $left <= 0;
		if ($IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_WRITE()) {
			IO::Select->new($s)->can_write($left);
		} else {
			$sel->can_read($left);
		}
	}
	$s->blocking(1);
	my $r = PortierTest::parse_response($buf, $head_only)
		// { status => 0, headers => {}, body => '', raw => '' };
	return { %$r, %$info, eof => $eof, read_error => $err };
}

# How many complete responses buf holds.
sub _complete {
	my ($buf, $head_only) = @_;
	my $n = 0;
	while (my $len = PortierTest::response_length($buf, $head_only)) {
		$n++;
		$buf = substr($buf, $len);
	}
	return $n;
}

# One request on a new TLS connection: GET path (or $o{method}), Host
# $o{host} (default the sni, else "localhost"), "Connection: close", more
# header lines in $o{headers}; read until the close. A handshake that
# fails gives { status => 0, handshake => 0, error => reason }.
sub tls_get {
	my ($port, $path, %o) = @_;
	my ($s, $err) = tls_connect($port, %o);
	return { status => 0, handshake => 0, error => $err, headers => {},
		body => '', raw => '' } unless $s;
	my $host = $o{host} // $o{sni} // 'localhost';
	my $req = ($o{method} // 'GET') . " $path HTTP/1.1\r\nHost: $host\r\n"
		. "Connection: close\r\n"
		. join('', map { "$_\r\n" } @{ $o{headers} // [] }) . "\r\n";
	my $r = tls_request($s, $req, until_eof => 1, timeout => $o{timeout});
	$s->close(SSL_fast_shutdown => 1);
	return $r;
}

# Run `openssl s_client -connect 127.0.0.1:port @$args -ign_eof`, its
# stdin the request (default: none, then it ends after the handshake),
# for at most $o{timeout} seconds (default 10). Returns { out (stdout and
# stderr), rc, handshake (1 if a cipher was agreed), protocol, cipher,
# subject, cn, alpn ('' when none), reused, sig_type (the server's
# signature: ECDSA, RSA-PSS...), key_bits, response (parsed, or undef) }.
sub s_client {
	my ($port, $args, %o) = @_;
	my $dir = ($TMP //= tempdir('portier-sclient-XXXXXX', TMPDIR => 1,
		CLEANUP => 1));
	my $in = "$dir/s_client.$$.in";
	my $out = "$dir/s_client.$$.out";
	open my $fh, '>', $in or die "$in: $!";
	binmode $fh;
	print $fh $o{request} // '';
	close $fh;
	my @cmd = ('openssl', 's_client', '-connect', "127.0.0.1:$port",
		@$args);
	push @cmd, '-ign_eof' if defined $o{request};
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDIN, '<', $in or _exit(127);
		open STDOUT, '>', $out or _exit(127);
		open STDERR, '>&', \*STDOUT or _exit(127);
		exec(@cmd) or _exit(127);
	}
	my $done = PortierTest::wait_for(sub {
		waitpid($pid, WNOHANG) == $pid }, $o{timeout} // 10);
	unless ($done) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
	my $rc = $? >> 8;
	open $fh, '<', $out or die "$out: $!";
	my $text = do { local $/; <$fh> } // '';
	close $fh;
	unlink $in, $out;
	my %r = (out => $text, rc => $rc, timed_out => $done ? 0 : 1);
	($r{protocol}) = $text =~ /^\s*Protocol\s*:\s*(\S+)/m;
	my ($kind, $cipher) = $text =~ /^(New|Reused), \S+, Cipher is (\S+)/m;
	$r{cipher} = $cipher;
	$r{handshake} = defined $cipher && $cipher ne '(NONE)' ? 1 : 0;
	$r{reused} = ($kind // '') eq 'Reused' ? 1 : 0;
	($r{subject}) = $text =~ /^subject=(.*)$/m;
	$r{subject} //= '';
	($r{cn}) = $r{subject} =~ /CN\s*=\s*([^,\/]+)/;
	$r{cn} //= '';
	($r{alpn}) = $text =~ /^ALPN protocol: (\S+)/m;
	$r{alpn} //= '';
	$r{no_alpn} = $text =~ /^No ALPN negotiated/m ? 1 : 0;
	($r{sig_type}) = $text =~ /^Peer signature type: (\S+)/m;
	$r{sig_type} //= '';
	($r{key_bits}) = $text =~ /^Server public key is (\d+) bit/m;
	$r{key_bits} //= 0;
	my $h = index($text, "HTTP/1.");
	$r{response} = $h >= 0
		? PortierTest::parse_response(substr($text, $h)) : undef;
	$r{status} = $r{response} ? $r{response}{status} : 0;
	return \%r;
}

# The first TLS record of a real client's handshake (a whole
# ClientHello), captured on a socket of our own. Options: sni, version.
sub client_hello {
	my (%o) = @_;
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1, ReuseAddr => 1) or die "listen: $!";
	my $port = $l->sockport;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $l;
		tls_connect($port, %o, timeout => 5);
		_exit(0);
	}
	my $sel = IO::Select->new($l);
	my $buf = '';
	if ($sel->can_read(5)) {
		my $c = $l->accept;
		my $end = time() + 5;
		my $csel = IO::Select->new($c);
		while (time() < $end) {
			if (length $buf >= 5) {
				my $len = unpack('n', substr($buf, 3, 2));
				last if length $buf >= 5 + $len;
			}
			last unless $csel->can_read($end - time());
			my $n = sysread($c, $buf, 65536, length $buf);
			last unless $n;
		}
		close $c;
	}
	close $l;
	kill 'KILL', $pid;
	waitpid($pid, 0);
	die "no ClientHello captured" unless length $buf > 5
		&& substr($buf, 0, 1) eq "\x16";
	my $len = unpack('n', substr($buf, 3, 2));
	return substr($buf, 0, 5 + $len);
}

1;
