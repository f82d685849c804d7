#!/usr/bin/perl
# A black-box scan of the default TLS settings with sslscan(1) and
# testssl.sh (Debian's packages, installed by contrib/install-deps), as an
# auditor would run them: with an ECDSA and an RSA certificate and nothing else configured,
# only TLS 1.2 and 1.3 are accepted, every accepted suite is ECDHE with
# an AEAD cipher (no CBC, RC4, 3DES, NULL, anonymous or static RSA), no
# key exchange group under 128 bits, no renegotiation, the downgrade
# signal (TLS_FALLBACK_SCSV) honoured, no heartbleed, no compression.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierTLS;
use Test::More;

use JSON::PP;

sub which { return (grep { -x "$_/$_[0]" } split /:/, $ENV{PATH})[0] }
my $sslscan = which('sslscan');
my $testssl = which('testssl');
plan(skip_all => 'sslscan and testssl are not installed (contrib/install-deps)')
	unless $sslscan || $testssl;

my $t = PortierTest->new;
my $dir = $t->dir;
my $pki = PortierTLS->new("$dir/pki");
my ($ec, $ec_key) = $pki->server('ec', 'a.test');
my ($rsa, $rsa_key) = $pki->server('rsa', 'a.test');

$t->config(<<"EOF")->run;
tls = { certificates = ( { cert = "$ec"; key = "$ec_key"; },
                         { cert = "$rsa"; key = "$rsa_key"; } ); };
servers = ( { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "a.test";
              locations = ( { path = "/"; return = "200 ok"; } ); } );
EOF

my $port = $t->port(0);
SKIP: {
skip('sslscan is not installed', 15) unless $sslscan;
my $out = `sslscan --no-colour --sni-name=a.test 127.0.0.1:$port 2>&1`;
is($? >> 8, 0, 'sslscan ran') or diag($out);

my %proto = $out =~ /^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)$/mg;
is_deeply(\%proto, { SSLv2 => 'disabled', SSLv3 => 'disabled',
	'TLSv1.0' => 'disabled', 'TLSv1.1' => 'disabled',
	'TLSv1.2' => 'enabled', 'TLSv1.3' => 'enabled' },
	'only TLS 1.2 and 1.3 are accepted') or diag($out);

like($out, qr/^Server supports TLS Fallback SCSV$/m,
	'the downgrade signal is honoured');
like($out, qr/^Session renegotiation not supported$/m, 'no renegotiation');
like($out, qr/^TLSv1\.2 not vulnerable to heartbleed$/m, 'heartbleed tested');
unlike($out, qr/^\S+ vulnerable to heartbleed/m, 'no heartbleed');
unlike($out, qr/^Compression enabled/m, 'no compression');

my @suites = $out =~ /^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+(\d+) bits\s+(\S+)/mg;
my (@v12, @v13, @weak);
while (my ($v, $bits, $name) = splice(@suites, 0, 3)) {
	push @{ $v eq 'TLSv1.2' ? \@v12 : \@v13 }, $name;
	push @weak, "$v $name" if $bits < 128;
}
ok(@v13 >= 2, 'TLS 1.3 suites offered: ' . join(' ', @v13));
ok(@v12 >= 4, 'TLS 1.2 suites offered: ' . join(' ', @v12));
is_deeply([ grep { !/^ECDHE-(?:ECDSA|RSA)-(?:AES(?:128|256)-GCM-SHA(?:256|384)|CHACHA20-POLY1305)$/ } @v12 ],
	[], 'every TLS 1.2 suite is ECDHE with an AEAD cipher');
ok((grep { /^ECDHE-ECDSA-/ } @v12) && (grep { /^ECDHE-RSA-/ } @v12),
	'both certificates serve TLS 1.2 (ECDSA and RSA suites)');
is_deeply([ grep { !/^TLS_(?:AES_(?:128|256)_GCM_SHA(?:256|384)|CHACHA20_POLY1305_SHA256)$/ } @v13 ],
	[], 'every TLS 1.3 suite is AEAD');
is_deeply(\@weak, [], 'no suite under 128 bits');

my @groups = $out =~ /^TLSv1\.[23]\s+(\d+) bits\s+\S+/mg;
ok(@groups > 0, 'key exchange groups listed');
is_deeply([ grep { $_ < 128 } @groups ], [], 'no key exchange group under 128 bits');

}

# testssl.sh: protocols (-p), cipher categories (-s), forward secrecy (-f)
# and its vulnerability checks (-U). Certificate findings (-S) are left
# out: they judge the test PKI (a private CA, two-day certificates).
SKIP: {
skip('testssl is not installed', 7) unless $testssl;
my $json = "$dir/testssl.json";
# no DNS (the suite runs offline), and bounded: a hang fails, never stalls
my $out = `timeout 300 testssl --quiet --color 0 --warnings off --nodns none --connect-timeout 10 --openssl-timeout 10 --jsonfile $json -p -s -f -U 127.0.0.1:$port 2>&1`;
my $found = eval { decode_json($t->read_file('testssl.json')) } // [];
ok(@$found >= 30, 'testssl ran: ' . scalar(@$found) . ' findings')
	or diag($out);
my %f = map { $_->{id} => $_ } @$found;
is_deeply([ map { "$_->{severity} $_->{id}: $_->{finding}" }
	grep { $_->{severity} !~ /^(?:OK|INFO)$/ } @$found ], [],
	'testssl: no finding above INFO');
is_deeply([ map { $f{$_} ? $f{$_}{finding} : 'missing' } qw(TLS1 TLS1_1 SSLv3) ],
	[ ('not offered') x 3 ], 'testssl: no TLS 1.1 or older');
like($f{TLS1_3}{finding} // '', qr/^offered/, 'testssl: TLS 1.3 offered');
is($f{cipherlist_AVERAGE}{finding} // '', 'not offered',
	'testssl: no CBC suites');
is($f{PFS}{severity} // '', 'OK', 'testssl: forward secrecy');
is_deeply([ sort grep { /^(?:heartbleed|CCS|ticketbleed|ROBOT|secure_renego|
	secure_client_renego|CRIME_TLS|BREACH|POODLE_SSL|fallback_SCSV|SWEET32|
	FREAK|DROWN|LOGJAM|BEAST|LUCKY13|RC4)$/x && $f{$_}{severity} eq 'OK' } keys %f ],
	[ sort qw(heartbleed CCS ticketbleed ROBOT secure_renego
	secure_client_renego CRIME_TLS BREACH POODLE_SSL fallback_SCSV SWEET32
	FREAK DROWN LOGJAM BEAST LUCKY13 RC4) ],
	'testssl: every vulnerability check says OK');
}

done_testing;
