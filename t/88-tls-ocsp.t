#!/usr/bin/perl
# OCSP stapling (tls.ocsp_staple_file): a client that asks for the
# certificate's status gets the configured response, byte for byte, from
# the server SNI chose; a client that does not ask gets none; a server
# without the setting staples nothing; a file that is not a DER OCSP
# response, or is missing, fails `portier -t` with file:line. A HUP with a
# new response file staples the new one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierTLS;
use PortierTLSClient;
use Test::More;

my $t = PortierTest->new;
my $dir = $t->dir;
my $pki = PortierTLS->new("$dir/pki");
my ($a_crt, $a_key) = $pki->server('ec', 'a.test');
my ($b_crt, $b_key) = $pki->server('ec', 'b.test');
my $a_der = $pki->ocsp($a_crt);

sub conf {
	my ($staple) = @_;
	return <<"EOF";
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%% ssl";
    server_name = "a.test";
    tls = { certificates = ( { cert = "$a_crt"; key = "$a_key"; } );
            ocsp_staple_file = "$staple"; };
    locations = ( { path = "/"; return = "200 a"; } );
  },
  {
    listen = "127.0.0.1:%%PORT_0%% ssl";
    server_name = "b.test";
    tls = { certificates = ( { cert = "$b_crt"; key = "$b_key"; } ); };
    locations = ( { path = "/"; return = "200 b"; } );
  }
);
EOF
}

# The stapled response as s_client shows it: the DER bytes are not
# printed, so compare what they decode to with the file's decoding.
sub staple_text {
	my ($o) = @_;
	return undef if $o->{out} =~ /^OCSP response: no response sent/m;
	my ($text) = $o->{out} =~ /^(OCSP Response Data:.*?)^---/ms;
	return $text;
}

sub file_text {
	my ($der) = @_;
	my $text = `openssl ocsp -respin '$der' -resp_text -noverify 2>&1`;
	my ($data) = $text =~ /(OCSP Response Data:.*?)(?:^Response verify|\z)/ms;
	return $data;
}

my $REQ = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";

# What identifies a response: its serial number, the time it was
# produced and its validity (s_client and `openssl ocsp` lay the rest out
# differently).
sub ident {
	my ($text) = @_;
	return join('|', map { ($text // '') =~ /^\s*\Q$_\E:\s*(.+?)\s*$/m ? $1 : '?' }
		'Produced At', 'Serial Number', 'This Update', 'Next Update');
}

$t->config(conf($a_der))->run;

for my $v ([ '-tls1_3', 'TLS 1.3' ], [ '-tls1_2', 'TLS 1.2' ]) {
	my $o = s_client($t->port(0), [ '-servername', 'a.test', '-status',
		$v->[0] ], request => $REQ);
	ok($o->{handshake}, "$v->[1]: handshake");
	my $got = staple_text($o);
	ok(defined $got, "$v->[1]: a response is stapled");
	like($got // '', qr/Cert Status: good/, "$v->[1]: it says good");
	unlike(ident($got), qr/\?/, "$v->[1]: its serial and times are read");
	is(ident($got), ident(file_text($a_der)),
		"$v->[1]: it is the configured response");
}

my $o = s_client($t->port(0), [ '-servername', 'a.test' ], request => $REQ);
ok($o->{handshake}, 'no status request: handshake');
unlike($o->{out}, qr/OCSP Response Data/, 'no status request: nothing stapled');

$o = s_client($t->port(0), [ '-servername', 'b.test', '-status' ],
	request => $REQ);
ok($o->{handshake}, 'server without a staple file: handshake');
like($o->{out}, qr/^OCSP response: no response sent/m,
	'server without a staple file (chosen by SNI): nothing stapled');

# a new response after a reload: another certificate's, told apart by
# its serial number
my $serial_of = sub {
	my ($text) = @_;
	return ($text // '') =~ /Serial Number: (\S+)/ ? $1 : '';
};
my ($a2_crt) = $pki->server('ec', 'a.test');
my $a2_der = $pki->ocsp($a2_crt);
isnt($serial_of->(file_text($a2_der)), $serial_of->(file_text($a_der)),
	'the second response names another serial');
$t->write_file('staple.der', do {
	open my $fh, '<:raw', $a2_der or die "$a2_der: $!";
	local $/;
	<$fh>;
});
$t->config(conf("$dir/staple.der"));
$t->signal('HUP');
ok(PortierTest::wait_for(sub {
	my $o = s_client($t->port(0), [ '-servername', 'a.test', '-status' ],
		request => $REQ);
	$serial_of->(staple_text($o)) eq $serial_of->(file_text($a2_der));
}), 'after HUP: the new response is stapled');

# portier -t: a file that is not a DER OCSP response, a missing one
$t->write_file('garbage.der', "not an OCSP response\n");
for my $c ([ "$dir/garbage.der", qr/not a DER OCSP response/ ],
	   [ "$dir/missing.der", qr/No such file/ ]) {
	$t->config(conf($c->[0]), file => 'bad.conf');
	my ($rc, undef, $out) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
	isnt($rc, 0, "-t refuses $c->[0]");
	like($out, qr/:\d+: .*ocsp_staple_file/, '-t names file:line and the setting');
	like($out, $c->[1], '-t says why');
}

done_testing;
