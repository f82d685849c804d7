#!/usr/bin/perl
# TLS certificates and reload (issue 4): a HUP after the certificate and
# key files changed serves the new certificate on new connections while
# a TLS download already in flight completes; a HUP with a broken
# certificate (garbage PEM, a missing file) or a key that does not match
# is refused with "file:line: tls: ..." in the error log and the old
# certificate keeps being served by the same workers; `portier -t` on
# those files exits non-zero with file:line; a key file readable only by
# root works (the master reads it before the workers drop privileges),
# at start and on HUP (run as root only).
#
# Every wait is a bounded poll; the only pauses are the pace of a
# deliberately slow reader.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use IO::Socket::SSL qw(SSL_VERIFY_NONE);
use POSIX qw(_exit);
use PortierTest;
use PortierHTTP;
use PortierTLS;
use PortierTLSClient;
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $ROOT = $> == 0;

my $t = PortierTest->new;
my $pki = PortierTLS->new($t->dir . '/pki');
my @gen = map { [ $pki->server('ec', 'a.test', "v$_.a.test") ] } 1 .. 4;
my $other_key = ($pki->server('ec', 'a.test'))[1];

# The serial of a certificate file, as the client reports it.
sub serial_of {
	my ($file) = @_;
	my $out = `openssl x509 -in '$file' -noout -serial`;
	my ($hex) = $out =~ /serial=([0-9A-Fa-f]+)/ or die "no serial in $file";
	return norm($hex);
}
sub norm { my $h = uc($_[0] // ''); $h =~ s/^0+//; return $h }

my $crt = $t->dir . '/tls/server.crt';
my $key = $t->dir . '/tls/server.key';
sub install {
	my ($c, $k) = @_;
	$t->write_file($crt, $t->read_file($c));
	$t->write_file($key, $t->read_file($k), 0644);
}
install(@{ $gen[0] });
my $big = PortierTest::test_data(PortierTest::inflight_size());
$t->write_file('www/big', $big);

$t->config(<<'EOF')->run(workers => 2);
worker_processes = 2;
tls = {
  certificates = ( { cert = "%%DIR%%/tls/server.crt"; key = "%%DIR%%/tls/server.key"; } );
};
servers = ( { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "a.test";
  locations = ( { path = "/"; return = "200 ok"; },
                { path = "/big"; root = "%%DIR%%/www"; } ); } );
EOF
my $conf = $t->conf_path;
my @lines = split /\n/, $t->read_file($conf);
my ($LINE) = grep { $lines[$_ - 1] =~ /certificates =/ } 1 .. @lines;
my $P0 = $t->port(0);

sub served_serial {
	my $r = tls_get($P0, '/', sni => 'a.test', timeout => 3);
	return $r->{status} == 200 ? norm($r->{serial}) : "status $r->{status}";
}
sub reload_failures { () = ($t->read_file('error.log') // '') =~ /reload failed/g }

my @workers = $t->wait_workers(2);
is(served_serial(), serial_of($gen[0][0]), 'generation 1 certificate served');

# ---- a new certificate on HUP; a download in flight completes --------------------------

{
	# a TLS download the old worker has to finish, read slowly
	my $raw = connect_raw($t, rcvbuf => 16384);
	my $dl = IO::Socket::SSL->start_SSL($raw, SSL_hostname => 'a.test',
		SSL_verify_mode => SSL_VERIFY_NONE);
	ok($dl, 'download connection: TLS') or diag($IO::Socket::SSL::SSL_ERROR);
	my $dl_serial = $dl ? norm(tls_session_info($dl)->{serial}) : '';
	syswrite($dl, "GET /big HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		if $dl;
	my $buf = '';
	PortierTest::slow_read($dl, \$buf, 512 * 1024) if $dl;

	install(@{ $gen[1] });
	$t->signal('HUP');
	my $want = serial_of($gen[1][0]);
	ok(PortierTest::wait_for(sub { served_serial() eq $want }),
		'HUP with a new certificate: new connections get it');
	my $r = tls_get($P0, '/', sni => 'a.test');
	is_deeply($r->{san}, ['a.test', 'v2.a.test'], 'HUP: the new certificate\'s names');

	PortierTest::slow_read($dl, \$buf, length($big) + 1024, 0) if $dl;
	my ($head, $body) = PortierTest::split_response($buf);
	ok(length($body) == length($big) && $body eq $big,
		'HUP: the TLS download in flight completes')
		or diag('got ' . length($body) . " bytes; head: $head");
	is($dl_serial, serial_of($gen[0][0]), 'on the old certificate');
	ok(!grep({ !PortierTest::wait_exit($_) } @workers), 'HUP: old workers exit');
	@workers = $t->wait_workers(2);
}

# ---- broken certificates and keys: refused, the old one kept ------------------------------

my $serving = serial_of($gen[1][0]);
for my $case (
	[ 'a garbage certificate', sub {
		$t->write_file($crt, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
			. "-----END CERTIFICATE-----\n") } ],
	[ 'a certificate file of random bytes', sub {
		$t->write_file($crt, join '', map { chr int rand 256 } 1 .. 800) } ],
	[ 'a key that does not match', sub {
		install($gen[2][0], $other_key) } ],
	[ 'a garbage key', sub {
		install($gen[2][0], $gen[2][1]);
		$t->write_file($key, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
			. "-----END PRIVATE KEY-----\n") } ],
	[ 'a missing certificate file', sub { unlink $crt } ],
	[ 'an empty certificate file', sub { $t->write_file($crt, '') } ],
) {
	my ($what, $break) = @$case;
	install(@{ $gen[2] });
	$break->();
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	isnt($rc, 0, "-t with $what: fails");
	like($err, qr/\Q$conf\E:$LINE: tls: /,
		"-t with $what: $conf:$LINE: tls: ... on stderr") or diag($err);
	my $fails = reload_failures();
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { reload_failures() > $fails }),
		"HUP with $what: reload refused");
	my @log = grep { /\Q$conf\E:$LINE: tls: / }
		split /\n/, $t->read_file('error.log') // '';
	ok(@log >= 1, "HUP with $what: file:line in the log")
		and note($log[-1]);
	is(served_serial(), $serving, "HUP with $what: the old certificate served");
	is_deeply([ $t->wait_workers(2) ], \@workers, "HUP with $what: same workers");
}
{
	install(@{ $gen[2] });
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	is($rc, 0, '-t with good files again: success') or diag($err);
	$t->signal('HUP');
	my $want = serial_of($gen[2][0]);
	ok(PortierTest::wait_for(sub { served_serial() eq $want }),
		'HUP after the files are mended: the new certificate served');
}

# ---- config checks of -t ---------------------------------------------------------------------

{
	my $d = $t->dir;
	my ($gc, $gk) = @{ $gen[2] };
	my $srv = 'return = "200 x";';
	for my $case (
		[ 'an ssl address whose server has no certificates',
		  qq(servers = ( { listen = "127.0.0.1:1 ssl"; $srv } );\n), 2,
		  qr/certificates/ ],
		[ 'one address with ssl and without',
		  qq(tls = { certificates = ( { cert = "$gc"; key = "$gk"; } ); };\n)
		  . qq|servers = ( { listen = "127.0.0.1:1 ssl"; $srv },\n|
		  . qq|  { listen = "127.0.0.1:1"; server_name = "b"; $srv } );\n|, 4,
		  qr/ssl/ ],
		[ 'verify_client on without client_ca',
		  qq(tls = { certificates = ( { cert = "$gc"; key = "$gk"; } );\n)
		  . qq(  verify_client = "on"; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1 ssl"; $srv } );\n), undef,
		  qr/client_ca/ ],
		[ 'an unknown protocol name',
		  qq(tls = { certificates = ( { cert = "$gc"; key = "$gk"; } );\n)
		  . qq(  protocols = [ "SSLv3" ]; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1 ssl"; $srv } );\n), 3,
		  qr/SSLv3/ ],
		[ 'a bad cipher list',
		  qq(tls = { certificates = ( { cert = "$gc"; key = "$gk"; } );\n)
		  . qq(  ciphers = "NO-SUCH-CIPHER"; };\n)
		  . qq(servers = ( { listen = "127.0.0.1:1 ssl"; $srv } );\n), 3,
		  qr/cipher/ ],
	) {
		my ($what, $text, $line, $msg) = @$case;
		my $f = $t->write_file('check.conf', "worker_processes = 1;\n$text");
		my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $f);
		isnt($rc, 0, "-t, $what: fails");
		my $at = defined $line ? $line : '\d+';
		like($err, qr/\Q$f\E:$at: .*$msg/,
			"-t, $what: file:line and the cause") or diag($err);
	}
	# relative names are taken from the configuration's directory
	mkdir "$d/rel";
	copy($gc, "$d/rel/r.crt") or die;
	copy($gk, "$d/rel/r.key") or die;
	my $f = $t->write_file('rel/rel.conf', "worker_processes = 1;\n"
		. qq(tls = { certificates = ( { cert = "r.crt"; key = "r.key"; } ); };\n)
		. qq(servers = ( { listen = "127.0.0.1:1 ssl"; $srv } );\n));
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $f);
	is($rc, 0, '-t: certificate names relative to the configuration\'s directory')
		or diag($err);
}

# ---- a key file readable only by root ---------------------------------------------------------

SKIP: {
	skip 'not root: the key file can not be made unreadable to the workers', 7
		unless $ROOT;
	my $nobody = getpwnam('nobody');
	skip 'no user nobody', 7 unless defined $nobody;
	install(@{ $gen[3] });
	chown 0, 0, $key;
	chmod 0600, $key;
	# the workers' user can really not read it
	my $pid = fork // die;
	if ($pid == 0) {
		$) = "$nobody $nobody";
		$> = $nobody;
		_exit(open(my $fh, '<', $key) ? 0 : 1);
	}
	waitpid($pid, 0);
	is($? >> 8, 1, 'key mode 0600 owned by root: nobody can not read it');
	my ($w) = $t->wait_workers(2);
	isnt((PortierTest::uids_of($w))[1], 0, 'the workers do not run as root');

	$t->signal('HUP');
	my $want = serial_of($gen[3][0]);
	ok(PortierTest::wait_for(sub { served_serial() eq $want }),
		'HUP with a root-only key: loaded, served');

	# and at start
	my $t2 = PortierTest->new;
	$t2->config(<<"EOF")->run;
tls = { certificates = ( { cert = "$crt"; key = "$key"; } ); };
servers = ( { listen = "127.0.0.1:%%PORT_0%% ssl"; return = "200 root-key"; } );
EOF
	my ($w2) = $t2->worker_pids;
	is((PortierTest::uids_of($w2))[1], $nobody, 'second instance: worker runs as nobody');
	my $r = tls_get($t2->port(0), '/', sni => 'a.test');
	is($r->{status} . ' ' . $r->{body}, '200 root-key',
		'started with a root-only key: serves TLS');
	is(norm($r->{serial}), $want, 'with that certificate');
	my ($rc, undef, $err) = $t2->run_cmd('-t', '-c', $t2->conf_path);
	is($rc, 0, '-t as root with a root-only key: success') or diag($err);
	$t2->stop;
}

ok(!$t->log_has(qr/\[(alert|emerg|crit)\]/), 'no alert in the error log');

done_testing;
