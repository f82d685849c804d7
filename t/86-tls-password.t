#!/usr/bin/perl
# Encrypted private keys and password_file (src/tls_key.c): an encrypted
# ECDSA key (PKCS#8) and an encrypted RSA key (the older Proc-Type form)
# served with a password file whose right passphrase is on its second
# line (each certificate served to the clients of its key type); a
# password file whose passphrases do not fit: `portier -t` exits 1 with
# file:line, a HUP is refused and the old keys keep serving; an
# encrypted key and no password_file: `portier -t` fails with a clear
# message and does not ask for a passphrase, even on a terminal (run on
# a pseudo-terminal by script(1), where a prompt would be a hang); a
# password file readable only by root, at start and on HUP (as root
# only); an upstream's client key encrypted, with the upstream's
# password_file, presented to a TLS backend that requires it, and its
# client certificate in a PEM block marked encrypted: refused, no prompt.
#
# Every wait is a bounded poll.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(:sys_wait_h _exit);
use PortierTest;
use PortierTLS;
use PortierTLSClient;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my $ROOT = $> == 0;
my $PASS = 'the right one';

my $t = PortierTest->new;
my $d = $t->dir;
my $pki = PortierTLS->new("$d/pki");
my ($ec_crt, $ec_plain) = $pki->server('ec', 'a.test');
my ($rsa_crt, $rsa_plain) = $pki->server('rsa', 'a.test');
my $ec_enc = $pki->encrypt($ec_plain, $PASS);
my $rsa_enc = $pki->encrypt($rsa_plain, $PASS, traditional => 1);

sub install {
	my ($name, $from, $mode) = @_;
	return $t->write_file("tls/$name", $t->read_file($from), $mode // 0644);
}
install('ec.crt', $ec_crt);
install('ec.key', $ec_enc);
install('rsa.crt', $rsa_crt);
install('rsa.key', $rsa_enc);
my $passfile = $t->write_file('tls/pass', "wrong\r\n$PASS\r\n", 0644);

like($t->read_file("$d/tls/ec.key"), qr/^-----BEGIN ENCRYPTED PRIVATE KEY-----/,
	'the ECDSA key is encrypted (PKCS#8)');
like($t->read_file("$d/tls/rsa.key"), qr/^Proc-Type: 4,ENCRYPTED/m,
	'the RSA key is encrypted (Proc-Type)');

$t->config(<<'EOF')->run;
tls = {
  certificates = (
    { cert = "%%DIR%%/tls/ec.crt"; key = "%%DIR%%/tls/ec.key"; },
    { cert = "%%DIR%%/tls/rsa.crt"; key = "%%DIR%%/tls/rsa.key"; }
  );
  password_file = "%%DIR%%/tls/pass";
};
servers = ( { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "a.test";
  locations = ( { path = "/"; return = "200 ok"; } ); } );
EOF
my $conf = $t->conf_path;
my @lines = split /\n/, $t->read_file($conf);
my ($EC_LINE) = grep { $lines[$_ - 1] =~ m{tls/ec\.crt} } 1 .. @lines;
my ($PW_LINE) = grep { $lines[$_ - 1] =~ /password_file =/ } 1 .. @lines;
my $P0 = $t->port(0);

# Which key the server signs with for a client that allows only sigalgs.
sub key_served {
	my ($sigalgs) = @_;
	my $o = s_client($P0, [ '-servername', 'a.test', '-sigalgs', $sigalgs ]);
	return $o->{handshake} ? "$o->{sig_type} $o->{key_bits}" : 'no handshake';
}
sub both_served {
	return key_served('ECDSA+SHA256') eq 'ECDSA 256'
		&& key_served('RSA-PSS+SHA256:rsa_pkcs1_sha256') =~ /^RSA\S* 2048$/;
}
sub reload_failures { () = ($t->read_file('error.log') // '') =~ /reload failed/g }

# ---- both encrypted keys served ---------------------------------------------------------

is(key_served('ECDSA+SHA256'), 'ECDSA 256',
	'an ECDSA client gets the encrypted ECDSA key\'s certificate');
like(key_served('RSA-PSS+SHA256:rsa_pkcs1_sha256'), qr/^RSA\S* 2048$/,
	'an RSA client gets the encrypted RSA key\'s certificate');
my $r = tls_get($P0, '/', sni => 'a.test');
is("$r->{status} $r->{body}", '200 ok', 'a request over TLS: 200');
{
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	is($rc, 0, '-t with the password file: success') or diag($err);
}
my @workers = $t->wait_workers(1);

# ---- passphrases that do not fit: -t fails, a HUP is refused ----------------------------

for my $case (
	[ 'no passphrase that fits', sub { $t->write_file($passfile, "nope\r\nnot this\n") },
	  qr/\Q$conf\E:$EC_LINE: tls: key "\Q$d\E\/tls\/ec\.key": no passphrase in "\Q$passfile\E" decrypts it/ ],
	[ 'a password file of empty lines', sub { $t->write_file($passfile, "\n\r\n") },
	  qr/\Q$conf\E:$PW_LINE: tls: password_file "\Q$passfile\E" holds no passphrase/ ],
	[ 'no password file', sub { unlink $passfile },
	  qr/\Q$conf\E:$PW_LINE: tls: password_file "\Q$passfile\E": No such file/ ],
	[ 'a line of 1024 bytes', sub { $t->write_file($passfile, ('x' x 1024) . "\n$PASS\n") },
	  qr/\Q$conf\E:$PW_LINE: tls: password_file "\Q$passfile\E": line 1 is longer than 1023 bytes/ ],
) {
	my ($what, $break, $want) = @$case;
	$break->();
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $conf);
	is($rc, 1, "-t with $what: exits 1");
	like($err, $want, "-t with $what: file:line and the cause") or diag($err);
	my $fails = reload_failures();
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { reload_failures() > $fails }),
		"HUP with $what: reload refused");
	ok($t->log_has($want), "HUP with $what: the cause in the error log");
	ok(both_served(), "HUP with $what: both old keys still serve");
	is_deeply([ $t->wait_workers(1) ], \@workers, "HUP with $what: same worker");
}
$t->write_file($passfile, "wrong\r\n$PASS\r\n", 0644);

# ---- an encrypted key without password_file: no prompt, even on a terminal -------------

# Run a command on a pseudo-terminal (script(1)), its input a pipe that
# never delivers, so that a prompt waits for ever: until it exits, or
# its output matches $stop_re, within $timeout seconds. Returns
# { rc (undef unless it exited), out }.
my $TTYS = 0;
sub on_tty {
	my ($cmd, $stop_re, $timeout) = @_;
	my $out = sprintf('%s/tty%d.out', $d, ++$TTYS);
	unlink $out;
	pipe(my $rd, my $wr) or die "pipe: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		close $wr;
		open STDIN, '<&', $rd or _exit(127);
		open STDOUT, '>', $out or _exit(127);
		open STDERR, '>&', \*STDOUT or _exit(127);
		exec('script', '-qec', $cmd, '/dev/null') or _exit(127);
	}
	close $rd;
	my $exited = 0;
	PortierTest::wait_for(sub {
		return $exited = 1 if waitpid($pid, WNOHANG) == $pid;
		return $stop_re && ($t->read_file($out) // '') =~ $stop_re;
	}, $timeout);
	my $rc = $exited ? $? >> 8 : undef;
	unless ($exited) {
		kill 'TERM', $pid; # script ends the command with it
		PortierTest::wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 5)
			or do { kill 'KILL', $pid; waitpid($pid, 0) };
	}
	close $wr;
	return { rc => $rc, out => $t->read_file($out) // '' };
}

SKIP: {
	skip 'no script(1) to make a terminal', 6
		unless grep { -x "$_/script" } split /:/, $ENV{PATH};
	my $check = $t->write_file('nopass.conf', <<"EOF");
error_log = "$d/nopass.log";
tls = { certificates = (
  { cert = "$d/tls/ec.crt"; key = "$d/tls/ec.key"; } ); };
servers = ( { listen = "127.0.0.1:1 ssl"; return = "200 x"; } );
EOF
	# the harness sees a prompt: OpenSSL's own tool asks and waits
	my $o = on_tty("openssl pkey -noout -in '$d/tls/ec.key'",
		qr/pass phrase/i, 10);
	ok(!defined $o->{rc} && $o->{out} =~ /pass phrase/i,
		'on the terminal, openssl asks for the passphrase and waits')
		or diag($o->{out});

	my $bin = PortierTest::binary();
	# a prompt ends the wait at once (and fails): no need for the bound
	$o = on_tty("'$bin' -t -c '$check'", qr/pass ?phrase/i, 10);
	ok(defined $o->{rc}, '-t on a terminal, encrypted key, no password_file: '
		. 'ends without waiting for input');
	is($o->{rc}, 1, '-t on a terminal: exits 1');
	like($o->{out}, qr/\Q$check\E:3: tls: key "\Q$d\E\/tls\/ec\.key" is encrypted: set password_file/,
		'-t on a terminal: file:line and "set password_file"') or diag($o->{out});
	unlike($o->{out}, qr/pass ?phrase:/i, '-t on a terminal: no prompt');
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $check);
	like($err, qr/is encrypted: set password_file/,
		'-t without a terminal: the same message') or diag($err);
}

# ---- -t: a plain key with a password file, relative names ----------------------------------

{
	$t->write_file('tls/plain.key', $t->read_file($ec_plain), 0644);
	$t->write_file('tls/rel.pass', "$PASS\n");
	my $f = $t->write_file('tls/mixed.conf', <<"EOF");
error_log = "$d/mixed.log";
tls = { certificates = ( { cert = "ec.crt"; key = "plain.key"; },
  { cert = "rsa.crt"; key = "rsa.key"; } );
  password_file = "rel.pass"; };
servers = ( { listen = "127.0.0.1:1 ssl"; return = "200 x"; } );
EOF
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', $f);
	is($rc, 0, '-t: a plain key and an encrypted one, password_file '
		. 'relative to the configuration') or diag($err);
}

# ---- a password file readable only by root ----------------------------------------------------

sub serial_of {
	my ($file) = @_;
	my ($hex) = `openssl x509 -in '$file' -noout -serial` =~ /serial=([0-9A-Fa-f]+)/
		or die "no serial in $file";
	return norm($hex);
}
sub norm { my $h = uc($_[0] // ''); $h =~ s/^0+//; return $h }

SKIP: {
	skip 'not root: the password file can not be made unreadable to the workers', 8
		unless $ROOT;
	my $nobody = getpwnam('nobody');
	skip 'no user nobody', 8 unless defined $nobody;
	# a new ECDSA certificate whose key only the root-only file opens
	my ($crt2, $key2) = $pki->server('ec', 'a.test', 'v2.a.test');
	install('ec.crt', $crt2);
	install('ec.key', $pki->encrypt($key2, 'root only'));
	$t->write_file($passfile, "wrong\nroot only\n$PASS\n", 0600);
	chown 0, 0, $passfile;
	my $pid = fork // die;
	if ($pid == 0) {
		$) = "$nobody $nobody";
		$> = $nobody;
		_exit(open(my $fh, '<', $passfile) ? 0 : 1);
	}
	waitpid($pid, 0);
	is($? >> 8, 1, 'password file mode 0600 owned by root: nobody can not read it');
	isnt((PortierTest::uids_of($workers[0]))[1], 0, 'the workers do not run as root');

	my $want = serial_of($crt2);
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub {
		norm(tls_get($P0, '/', sni => 'a.test', timeout => 3)->{serial}) eq $want }),
		'HUP with a root-only password file: the new key loaded, served');
	ok(both_served(), 'HUP with a root-only password file: both keys serve');

	my $t2 = PortierTest->new;
	$t2->config(<<"EOF")->run;
tls = { certificates = ( { cert = "$d/tls/ec.crt"; key = "$d/tls/ec.key"; },
                         { cert = "$d/tls/rsa.crt"; key = "$d/tls/rsa.key"; } );
        password_file = "$passfile"; };
servers = ( { listen = "127.0.0.1:%%PORT_0%% ssl"; return = "200 root-pass"; } );
EOF
	my ($w2) = $t2->worker_pids;
	is((PortierTest::uids_of($w2))[1], $nobody, 'second instance: the worker runs as nobody');
	$r = tls_get($t2->port(0), '/', sni => 'a.test');
	is("$r->{status} $r->{body}", '200 root-pass',
		'started with a root-only password file: serves TLS');
	is(norm($r->{serial}), $want, 'with the key it opened');
	my ($rc, undef, $err) = $t2->run_cmd('-t', '-c', $t2->conf_path);
	is($rc, 0, '-t as root with a root-only password file: success') or diag($err);
	$t2->stop;
}

# ---- an upstream's encrypted client key ----------------------------------------------------

SKIP: {
	skip 'proxy not compiled in', 10 unless PortierTest::modules()->{proxy};
	require PortierBackend;
	my $CA = $pki->ca;
	my @bk = $pki->server('ec', 'backend.test');
	my @client = $pki->client('portier-proxy');
	my $client_key = $pki->encrypt($client[1], 'client side');
	# read by the master before the workers drop privileges
	chmod 0600, $client_key;
	my $up_pass = $t->write_file('tls/up.pass', "\nnot it\nclient side\n", 0600);
	my $mtls = PortierBackend->new(name => 'mtls', dir => $d,
		tls => { cert => $bk[0], key => $bk[1], ca => $CA });
	my $tu = PortierTest->new;
	my $TLS = qq{ca = "$CA"; server_name = "backend.test"; cert = "$client[0]";};
	$tu->config(<<"EOF")->run;
upstreams = { m = { servers = ( { address = "${\ $mtls->addr}"; } );
  tls = { $TLS key = "$client_key"; password_file = "$up_pass"; }; }; };
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; proxy_pass = "m"; } ); } );
EOF
	my $r = $tu->get('/', timeout => 30);
	is($r->{status}, 200, 'upstream with an encrypted client key: 200');
	my @req = $mtls->requests;
	is(scalar @req, 1, 'the request reached the backend that requires a certificate');
	like($req[-1]{tls_client} // '', qr/CN\s*=\s*portier-proxy/,
		'the backend saw the client certificate');

	for my $c (
		[ 'no password_file', qq{key = "$client_key";},
		  qr/bad\.conf:3: tls: key "\Q$client_key\E" is encrypted: set password_file/ ],
		[ 'no passphrase that fits', qq{key = "$client_key"; password_file = "$passfile";},
		  qr/bad\.conf:3: tls: key "\Q$client_key\E": no passphrase in "\Q$passfile\E" decrypts it/ ],
		[ 'password_file without key', qq{password_file = "$up_pass";},
		  qr/bad\.conf:3: .*"password_file" is for "key"/ ],
	) {
		my ($what, $tls, $want) = @$c;
		$tls = $what =~ /without key/ ? qq{ca = "$CA"; $tls} : "$TLS $tls";
		$tu->write_file('bad.conf', <<"EOF");
error_log = "$d/bad.log";
upstreams = { u = { servers = ( { address = "127.0.0.1:1"; } );
  tls = { $tls }; }; };
servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );
EOF
		my ($rc, undef, $err) = $tu->run_cmd('-t', '-c', $tu->dir . '/bad.conf');
		is($rc, 1, "upstream, $what: -t exits 1");
		like($err, $want, "upstream, $what: file:line and the cause") or diag($err);
	}

	# a client certificate whose PEM block says it is encrypted: read
	# without a passphrase, never with OpenSSL's prompt
	SKIP: {
		skip 'no script(1) to make a terminal', 3
			unless grep { -x "$_/script" } split /:/, $ENV{PATH};
		(my $pem = $t->read_file($client[0])) =~ s/^(-----BEGIN CERTIFICATE-----\n)/$1Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n/;
		my $enc_crt = $tu->write_file('tls/enc-client.crt', $pem);
		my $f = $tu->write_file('enc.conf', <<"EOF");
error_log = "$d/enc.log";
upstreams = { u = { servers = ( { address = "127.0.0.1:1"; } );
  tls = { ca = "$CA"; server_name = "x"; cert = "$enc_crt"; key = "$client[1]"; }; }; };
servers = ( { listen = "127.0.0.1:1"; locations = ( { path = "/"; proxy_pass = "u"; } ); } );
EOF
		my $bin = PortierTest::binary();
		my $o = on_tty("'$bin' -t -c '$f'", qr/pass ?phrase/i, 10);
		is($o->{rc}, 1, 'upstream, a certificate block marked encrypted, on a terminal: -t exits 1');
		like($o->{out}, qr/enc\.conf:3: tls: cert "\Q$enc_crt\E": bad password read/,
			'upstream, a certificate block marked encrypted: file:line and the cause')
			or diag($o->{out});
		unlike($o->{out}, qr/pass ?phrase:/i,
			'upstream, a certificate block marked encrypted: no prompt');
	}
	$tu->stop;
	ok(!$tu->log_has(qr/\[(alert|emerg|crit)\]/), 'upstream instance: no alert');
}

ok(!$t->log_has(qr/\[(alert|emerg|crit)\]/), 'no alert in the error log');

done_testing;
