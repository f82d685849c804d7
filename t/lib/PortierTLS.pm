package PortierTLS;

# Test certificates, made by the harness with openssl(1) for each test
# run: nothing secret is committed. One CA signs server certificates
# (ECDSA P-256 or RSA 2048, with subjectAltName DNS names) and client
# certificates; a second, unrelated CA makes certificates nobody trusts.
#
#   use PortierTLS;
#   my $pki = PortierTLS->new($t->{dir} . '/pki');   # makes both CAs
#   my ($crt, $key) = $pki->server('ec', 'a.test', '*.b.test');
#   my ($crt, $key) = $pki->server('rsa', 'a.test');
#   my ($crt, $key) = $pki->server('ec', 'a.test', '127.0.0.1'); # IP SAN
#   my ($crt, $key) = $pki->client('alice');      # CN=alice,O=portier test
#   my ($crt, $key) = $pki->client('mallory', rogue => 1);  # other CA
#   $pki->ca, $pki->rogue_ca                       # CA certificate files
#   my $der = $pki->ocsp($crt);     # a "good" OCSP response signed by the CA
#   my $pem = $pki->crl(@crts);     # a CRL of the CA revoking @crts
#   my $pem = $pki->crl(@crts, { expired => 1 });  # nextUpdate 1h ago
#   my $pem = $pki->crl({ rogue => 1 });           # the rogue CA's, empty
#   my $enc = $pki->encrypt($key, 'pass phrase');  # AES-256, PKCS#8 PEM
#   my $enc = $pki->encrypt($key, 'pass', traditional => 1); # Proc-Type PEM
#
# Each call makes new files (named after kind and first name) and returns
# their paths. openssl runs quietly; a failure dies with its output.

use strict;
use warnings;

use File::Path qw(make_path);

sub new {
	my ($class, $dir) = @_;
	make_path($dir);
	my $self = bless { dir => $dir, n => 0 }, $class;
	$self->{ca} = $self->_ca('ca', 'portier test CA');
	$self->{rogue} = $self->_ca('rogue', 'rogue CA');
	return $self;
}

sub ca { return $_[0]{ca}{crt} }
sub rogue_ca { return $_[0]{rogue}{crt} }
sub dir { return $_[0]{dir} }

sub _run {
	my (@cmd) = @_;
	my $out = `@cmd 2>&1`;
	die "openssl failed: @cmd\n$out" if $?;
	return $out;
}

sub _key {
	my ($self, $type, $file) = @_;
	if ($type eq 'rsa') {
		_run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"
		    . " -out '$file'");
	} else {
		_run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
		    . " -out '$file'");
	}
	chmod 0644, $file; # workers may run as nobody in tests
}

sub _ca {
	my ($self, $name, $cn) = @_;
	my $d = $self->{dir};
	$self->_key('ec', "$d/$name.key");
	_run("openssl req -x509 -new -key '$d/$name.key' -days 2 -sha256"
	    . " -subj '/O=portier test/CN=$cn' -out '$d/$name.crt'"
	    . " -addext 'basicConstraints=critical,CA:TRUE'"
	    . " -addext 'keyUsage=critical,keyCertSign,cRLSign'");
	return { crt => "$d/$name.crt", key => "$d/$name.key" };
}

# Sign a CSR with the CA; $ext is the text of an extensions file.
sub _sign {
	my ($self, $ca, $base, $subj, $type, $ext) = @_;
	$self->_key($type, "$base.key");
	_run("openssl req -new -key '$base.key' -subj '$subj' -out '$base.csr'");
	open(my $fh, '>', "$base.ext") or die "$base.ext: $!";
	print $fh $ext;
	close $fh;
	_run("openssl x509 -req -in '$base.csr' -CA '$ca->{crt}'"
	    . " -CAkey '$ca->{key}' -CAcreateserial -days 2 -sha256"
	    . " -extfile '$base.ext' -out '$base.crt'");
	return ("$base.crt", "$base.key");
}

# A server certificate for the names given (the first is the CN).
sub server {
	my ($self, $type, @names) = @_;
	my %o = ref $names[-1] eq 'HASH' ? %{ pop @names } : ();
	my $base = sprintf('%s/srv-%s-%s-%d', $self->{dir}, $type,
		$names[0] =~ s/[^\w.-]/_/gr, ++$self->{n});
	# a name that is an IP address is an IP SAN
	my $san = join(',', map { /^[\d.]+$|:/ ? "IP:$_" : "DNS:$_" } @names);
	my $ca = $o{rogue} ? $self->{rogue} : $self->{ca};
	return $self->_sign($ca, $base, "/O=portier test/CN=$names[0]", $type,
		"basicConstraints=CA:FALSE\nsubjectAltName=$san\n"
		. "extendedKeyUsage=serverAuth\n");
}

# A client certificate: subject CN=$cn, O=portier test.
sub client {
	my ($self, $cn, %o) = @_;
	my $base = sprintf('%s/cli-%s-%d', $self->{dir}, $cn, ++$self->{n});
	my $ca = $o{rogue} ? $self->{rogue} : $self->{ca};
	return $self->_sign($ca, $base, "/O=portier test/CN=$cn",
		$o{type} // 'ec',
		"basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
}

# An encrypted copy of a key file (AES-256), next to it: PKCS#8
# ("ENCRYPTED PRIVATE KEY"), or with traditional => 1 the older form
# ("Proc-Type: 4,ENCRYPTED"). The passphrase goes through the
# environment, so it may hold any byte but NUL and newline.
sub encrypt {
	my ($self, $key, $pass, %o) = @_;
	my $out = sprintf('%s.enc%d', $key, ++$self->{n});
	local $ENV{PORTIER_TEST_KEY_PASS} = $pass;
	_run("openssl pkey -in '$key' -aes256 -passout env:PORTIER_TEST_KEY_PASS"
	    . ($o{traditional} ? ' -traditional' : '') . " -out '$out'");
	chmod 0644, $out;
	return $out;
}

# An OCSP response (DER file) for $crt, signed by the CA, that says
# "good", as a responder would answer; for stapling tests.
sub ocsp {
	my ($self, $crt) = @_;
	my $d = $self->{dir};
	my $base = "$crt.ocsp";
	my $serial = _run("openssl x509 -in '$crt' -noout -serial");
	$serial =~ s/^serial=//;
	chomp $serial;
	my $subj = _run("openssl x509 -in '$crt' -noout -subject -nameopt compat");
	$subj =~ s/^subject=\s*//;
	chomp $subj;
	# a responder's database: V(alid), expiry, (revoked), serial, file, DN
	open(my $fh, '>', "$base.index") or die "$base.index: $!";
	print $fh "V\t391231235959Z\t\t$serial\tunknown\t$subj\n";
	close $fh;
	_run("openssl ocsp -issuer '$self->{ca}{crt}' -cert '$crt' -no_nonce"
	    . " -reqout '$base.req'");
	_run("openssl ocsp -index '$base.index' -rsigner '$self->{ca}{crt}'"
	    . " -rkey '$self->{ca}{key}' -CA '$self->{ca}{crt}'"
	    . " -reqin '$base.req' -respout '$base.der' -ndays 1");
	chmod 0644, "$base.der";
	return "$base.der";
}

# A CRL (PEM file) of the CA that revokes the certificates given (none:
# an empty list), made by `openssl ca -gencrl` from an index of its own.
# Options in a trailing hash: rogue => 1 (signed by the rogue CA),
# expired => 1 (lastUpdate two hours ago, nextUpdate one hour ago).
sub crl {
	my ($self, @crts) = @_;
	my %o = ref($crts[-1] // '') eq 'HASH' ? %{ pop @crts } : ();
	my $ca = $o{rogue} ? $self->{rogue} : $self->{ca};
	my $base = sprintf('%s/crl-%d', $self->{dir}, ++$self->{n});
	my $stamp = sub {
		my @t = gmtime(time + $_[0]);
		return sprintf('%04d%02d%02d%02d%02d%02dZ', $t[5] + 1900,
			$t[4] + 1, @t[3, 2, 1, 0]);
	};
	my $revoked = substr($stamp->(-60), 2); # YYMMDDHHMMSSZ, as the index
	# the database of `openssl ca`: R(evoked), expiry, revocation date,
	# serial, file, DN (not used for a CRL)
	open(my $fh, '>', "$base.index") or die "$base.index: $!";
	for my $crt (@crts) {
		my $serial = _run("openssl x509 -in '$crt' -noout -serial");
		$serial =~ s/^serial=//;
		chomp $serial;
		print $fh "R\t391231235959Z\t$revoked\t$serial\tunknown\t"
			. "/CN=revoked-$serial\n";
	}
	close $fh;
	open($fh, '>', "$base.number") or die "$base.number: $!";
	print $fh "01\n";
	close $fh;
	open($fh, '>', "$base.cnf") or die "$base.cnf: $!";
	print $fh "[ ca ]\ndefault_ca = test_ca\n[ test_ca ]\n"
		. "database = $base.index\ncrlnumber = $base.number\n"
		. "certificate = $ca->{crt}\nprivate_key = $ca->{key}\n"
		. "default_md = sha256\ndefault_crl_days = 1\n"
		. "unique_subject = no\n";
	close $fh;
	my $dates = $o{expired}
		? ' -crl_lastupdate ' . $stamp->(-7200)
		  . ' -crl_nextupdate ' . $stamp->(-3600)
		: '';
	_run("openssl ca -batch -config '$base.cnf' -gencrl$dates"
	    . " -out '$base.pem'");
	chmod 0644, "$base.pem";
	return "$base.pem";
}

1;
