#!/usr/bin/perl
# The listen flag proxy_protocol: a connection must begin with a PROXY
# protocol header, v1 (text) or v2 (binary, built here with pack), whose
# source becomes the client address ($remote_addr, logs) and
# $proxy_protocol_addr. Headers split across writes, followed by
# pipelined and keep-alive requests; UNKNOWN, LOCAL, UNSPEC and TLVs;
# truncated, invalid and missing headers close the connection with no
# answer and an info line in the error log; a stalled header ends with
# client_header_timeout. With mod_realip: real_ip_header
# "proxy_protocol" and X-Forwarded-For trusted through the header's
# address.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use Socket qw(inet_pton AF_INET AF_INET6);
use Test::More;
use Time::HiRes qw(time);

PortierTest::need_modules(qw(rewrite));

my $t = PortierTest->new;
my $dir = $t->dir;
my $has_realip = PortierTest::modules()->{realip};
my $realip = $has_realip ? <<'EOF' : '';
  {
    listen = "127.0.0.1:%%PORT_2%% proxy_protocol";
    real_ip_from = "127.0.0.1";
    real_ip_header = "proxy_protocol";
    locations = ( { path = "/"; return = %%SHOW%%; } );
  },
  {
    listen = "127.0.0.1:%%PORT_3%% proxy_protocol";
    real_ip_from = "10.0.0.0/8";
    real_ip_header = "proxy_protocol";
    locations = ( { path = "/"; return = %%SHOW%%; } );
  },
  {
    listen = "127.0.0.1:%%PORT_4%% proxy_protocol";
    real_ip_from = "192.0.2.0/24";
    locations = ( { path = "/"; return = %%SHOW%%; } );
  },
EOF

my $conf = <<'EOF';
servers = (
  %%REALIP%%
  {
    listen = [ "127.0.0.1:%%PORT_0%% proxy_protocol" ];
    client_header_timeout = "2s";
    access_log = { path = "%%DIR%%/access.log";
                   format = "$remote_addr $proxy_protocol_addr $uri"; };
    locations = ( { path = "/"; return = %%SHOW%%; } );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    locations = ( { path = "/"; return = %%SHOW%%; } );
  }
);
EOF
$conf =~ s/%%REALIP%%/$realip/;
$conf =~ s/%%SHOW%%/"200 \$remote_addr|\$remote_port|\$proxy_protocol_addr|\$proxy_protocol_port"/g;
$t->config($conf)->run;

my $GET = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
my $GET_CLOSE = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

# ---- building headers --------------------------------------------------------------
sub v1 { "PROXY $_[0]\r\n" }

my $SIG = "\r\n\r\n\0\r\nQUIT\n";
sub v2 {
	my (%o) = @_;
	my $cmd = $o{cmd} // 1;
	my $fam = $o{fam} // 0x11;
	my $block = $o{block};
	unless (defined $block) {
		if ($fam == 0x11) {
			$block = inet_pton(AF_INET, $o{src} // '192.0.2.1')
				. inet_pton(AF_INET, $o{dst} // '198.51.100.1')
				. pack('nn', $o{sport} // 1234, $o{dport} // 443);
		} elsif ($fam == 0x21) {
			$block = inet_pton(AF_INET6, $o{src} // '2001:db8::1')
				. inet_pton(AF_INET6, $o{dst} // '2001:db8::2')
				. pack('nn', $o{sport} // 1234, $o{dport} // 443);
		} else {
			$block = '';
		}
		$block .= $o{tlv} // '';
	}
	my $ver = $o{ver} // 2;
	return $SIG . pack('CCn', ($ver << 4) | $cmd, $fam,
		$o{len} // length $block) . $block;
}
sub tlv { my ($type, $v) = @_; pack('Cn', $type, length $v) . $v }

# One connection: send the bytes (in pieces, if asked), read n responses.
sub exchange {
	my ($bytes, %o) = @_;
	my $s = connect_raw($t, port => $t->port($o{port} // 0));
	if ($o{cuts}) {
		send_paced($s, $bytes, $o{cuts}, 0.05);
	} else {
		write_all($s, $bytes);
	}
	my $r = read_responses($s, $o{n} // 1, timeout => $o{timeout} // 5,
		until_eof => $o{until_eof});
	close $s;
	return $r;
}

# The body "addr|port|pp addr|pp port" of the only response, or undef.
sub body_of {
	my $r = exchange(@_);
	my $resp = $r->{responses}[0] or return undef;
	return $resp->{status} == 200 ? $resp->{body} : "status $resp->{status}";
}

# A connection the server must close without a byte.
sub refused {
	my ($bytes, $name, %o) = @_;
	my $s = connect_raw($t, port => $t->port($o{port} // 0));
	write_all($s, $bytes);
	my $w = wait_eof($s, $o{timeout} // 5);
	close $s;
	ok($w->{eof} && $w->{bytes} == 0, "closed, no answer: $name");
}

# ---- v1 ------------------------------------------------------------------------------
is(body_of(v1('TCP4 192.0.2.10 198.51.100.1 56324 443') . $GET_CLOSE),
	'192.0.2.10|56324|192.0.2.10|56324', 'v1 TCP4: the client address');
is(body_of(v1('TCP6 2001:db8::10 2001:db8::1 40000 80') . $GET_CLOSE),
	'2001:db8::10|40000|2001:db8::10|40000', 'v1 TCP6');
like(body_of(v1('UNKNOWN') . $GET_CLOSE) // '', qr/^127\.0\.0\.1\|\d+\|\|\z/,
	'v1 UNKNOWN: the peer, no $proxy_protocol_addr');
like(body_of(v1('UNKNOWN 1.2.3.4 whatever follows') . $GET_CLOSE) // '',
	qr/^127\.0\.0\.1\|/, 'v1 UNKNOWN: the rest of the line ignored');
is(body_of(v1('TCP4 255.255.255.255 255.255.255.255 65535 65535')
	. $GET_CLOSE), '255.255.255.255|65535|255.255.255.255|65535',
	'v1: the longest TCP4 line');
my $v6max = join(':', ('ffff') x 8);
is(body_of(v1("TCP6 $v6max $v6max 65535 65535") . $GET_CLOSE),
	"$v6max|65535|$v6max|65535", 'v1: the longest TCP6 line (104 bytes)');

my $hdr = v1('TCP4 192.0.2.11 198.51.100.1 1000 443');
is(body_of($hdr . $GET_CLOSE, cuts => [ 1, 3, 6, 10, 20, length($hdr) - 1,
	length($hdr), length($hdr) + 5 ]),
	'192.0.2.11|1000|192.0.2.11|1000', 'v1 in pieces, CR and LF apart');

# keep-alive and pipelining: the address holds for the whole connection
my $r = exchange($hdr . $GET . $GET . $GET_CLOSE, n => 3);
is(scalar @{ $r->{responses} }, 3, 'pipelined after the header: 3 answers');
is_deeply([ map { (split /\|/, $_->{body})[0] } @{ $r->{responses} } ],
	[ ('192.0.2.11') x 3 ], 'pipelined: every request has the address');
{
	my $s = connect_raw($t);
	write_all($s, $hdr . $GET);
	my $a = read_responses($s, 1);
	write_all($s, $GET_CLOSE);
	my $b = read_responses($s, 1);
	close $s;
	is((split /\|/, $b->{responses}[0]{body} // '')[0], '192.0.2.11',
		'keep-alive: the second request too');
}

# ---- v2 ------------------------------------------------------------------------------
is(body_of(v2(src => '192.0.2.20', sport => 5555) . $GET_CLOSE),
	'192.0.2.20|5555|192.0.2.20|5555', 'v2 TCP over IPv4');
is(body_of(v2(fam => 0x21, src => '2001:db8::20', sport => 6666) . $GET_CLOSE),
	'2001:db8::20|6666|2001:db8::20|6666', 'v2 TCP over IPv6');
is(body_of(v2(src => '192.0.2.21', tlv => tlv(0x01, 'h2') . tlv(0x04, "\0" x 100)
	. tlv(0xEA, 'vpce-0123')) . $GET_CLOSE),
	'192.0.2.21|1234|192.0.2.21|1234', 'v2 with TLVs: skipped');
like(body_of(v2(cmd => 0, fam => 0x00) . $GET_CLOSE) // '',
	qr/^127\.0\.0\.1\|\d+\|\|\z/, 'v2 LOCAL: the peer');
like(body_of(v2(cmd => 0, fam => 0x11) . $GET_CLOSE) // '',
	qr/^127\.0\.0\.1\|/, 'v2 LOCAL with addresses: still the peer');
like(body_of(v2(fam => 0x00, block => 'junk') . $GET_CLOSE) // '',
	qr/^127\.0\.0\.1\|/, 'v2 PROXY UNSPEC: the peer');
my $h2 = v2(src => '192.0.2.22');
is(body_of($h2 . $GET_CLOSE, cuts => [ 2, 5, 12, 13, 15, 16, 20,
	length($h2) ]), '192.0.2.22|1234|192.0.2.22|1234', 'v2 in pieces');
$r = exchange($h2 . $GET . $GET_CLOSE, n => 2);
is_deeply([ map { (split /\|/, $_->{body})[0] } @{ $r->{responses} } ],
	[ ('192.0.2.22') x 2 ], 'v2: pipelined requests');
# a large TLV area within the head buffer (4 x 8k by default)
is(body_of(v2(src => '192.0.2.23', tlv => tlv(0x04, "\0" x 20000)) . $GET_CLOSE),
	'192.0.2.23|1234|192.0.2.23|1234', 'v2 with 20 KB of TLVs');

# ---- refused ------------------------------------------------------------------------------
refused($GET, 'a request without the header');
ok($t->wait_log(qr/closing: invalid PROXY protocol header: not a PROXY protocol header, client: 127\.0\.0\.1/),
	'logged at info with the reason and the peer');
refused(v1('TCP4 999.0.0.1 198.51.100.1 1 2') . $GET, 'v1 bad address');
refused(v1('TCP4 2001:db8::1 198.51.100.1 1 2') . $GET, 'v1 TCP4 with IPv6');
refused(v1('TCP6 192.0.2.1 2001:db8::1 1 2') . $GET, 'v1 TCP6 with IPv4');
refused(v1('TCP4 192.0.2.1 198.51.100.1 70000 2') . $GET, 'v1 port > 65535');
refused(v1('TCP4 192.0.2.1 198.51.100.1 1x 2') . $GET, 'v1 port not a number');
refused(v1('TCP4 192.0.2.1 198.51.100.1 1') . $GET, 'v1 missing field');
refused(v1('TCP4 192.0.2.1 198.51.100.1 1 2 3') . $GET, 'v1 extra field');
refused(v1('TCP4  192.0.2.1 198.51.100.1 1 2') . $GET, 'v1 double space');
refused(v1('TCP4 192.0.2.1 198.51.100.1 1 2 ') . $GET, 'v1 trailing space');
refused(v1('TCP5 192.0.2.1 198.51.100.1 1 2') . $GET, 'v1 unknown protocol');
refused("PROXY TCP4 192.0.2.1 198.51.100.1 1 2\n" . $GET, 'v1 LF without CR');
refused("PROXY TCP4 192.0.2.1\r198.51.100.1 1 2\r\n" . $GET, 'v1 CR without LF');
refused('PROXY UNKNOWN ' . ('x' x 200) . "\r\n" . $GET, 'v1 over 107 bytes');
refused('PROXY UNKNOWN ' . ('x' x 92) . "\r\n" . $GET,
	'v1 of 108 bytes');
like(body_of('PROXY UNKNOWN ' . ('x' x 91) . "\r\n" . $GET_CLOSE) // '',
	qr/^127\.0\.0\.1\|/, 'v1 of exactly 107 bytes: accepted');
ok($t->wait_log(qr/no CRLF within 107 bytes/), 'v1 too long: logged');
refused("proxy TCP4 192.0.2.1 198.51.100.1 1 2\r\n" . $GET, 'v1 lower case');
refused(v2(ver => 1) . $GET, 'v2 version 1');
refused(v2(cmd => 2) . $GET, 'v2 command 2');
refused(v2(fam => 0x12, block => "\0" x 12) . $GET, 'v2 UDP');
refused(v2(fam => 0x31, block => "\0" x 216) . $GET, 'v2 unix socket');
refused(v2(fam => 0x11, block => "\0" x 4) . $GET, 'v2 block too short');
refused(v2(fam => 0x21, block => "\0" x 12) . $GET, 'v2 IPv6 block too short');
refused(substr($SIG, 0, 6) . "X" . $GET, 'v2 broken signature');
ok($t->wait_log(qr/v2: not TCP over IPv4 or IPv6/), 'v2 UDP: logged');
refused(v2(tlv => tlv(0x04, "\0" x 40000)) . $GET, 'v2 larger than the head buffer');
ok($t->wait_log(qr/PROXY protocol header too long/), 'too long: logged');

# truncated, then the client closes
for my $cut ([ v1('TCP4 192.0.2.1 198.51.100.1 1 2'), 20, 'v1' ],
	     [ v2(), 10, 'v2 signature' ], [ v2(), 20, 'v2 block' ]) {
	my ($bytes, $n, $name) = @$cut;
	my $s = connect_raw($t);
	write_all($s, substr($bytes, 0, $n));
	shutdown($s, 1);
	my $w = wait_eof($s, 5);
	close $s;
	ok($w->{eof} && $w->{bytes} == 0, "truncated $name, half-closed: closed");
}
ok($t->wait_log(qr/connection closed within the PROXY protocol header/),
	'truncated: logged');

# truncated, then silence: client_header_timeout (2 s) ends it
{
	my $s = connect_raw($t);
	my $start = time();
	write_all($s, substr(v2(), 0, 14));
	my $w = wait_eof($s, 10);
	my $took = time() - $start;
	close $s;
	ok($w->{eof} && $w->{bytes} == 0, 'stalled header: closed, no answer');
	ok($took > 1.5 && $took < 8, "stalled header: after client_header_timeout ($took s)");
	ok($t->wait_log(qr/timed out waiting for the PROXY protocol header/),
		'stalled header: logged');
}

# a header on a listener without the flag is just a bad request
$r = exchange(v1('TCP4 192.0.2.1 198.51.100.1 1 2') . $GET_CLOSE, port => 1,
	until_eof => 1);
isnt(($r->{responses}[0] // {})->{status} // 0, 200,
	'no flag: a PROXY line is not accepted');
like(body_of($GET_CLOSE, port => 1) // '', qr/^127\.0\.0\.1\|\d+\|\|\z/,
	'no flag: plain requests, no $proxy_protocol_addr');

# ---- logs ------------------------------------------------------------------------------------
exchange(v1('TCP4 192.0.2.99 198.51.100.1 1 2')
	. "GET /logged HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
ok(PortierTest::wait_for(sub {
	($t->read_file('access.log') // '') =~ m{^192\.0\.2\.99 192\.0\.2\.99 /logged$}m }, 5),
	'access log: the PROXY address');

# ---- with mod_realip -------------------------------------------------------------------------------
SKIP: {
	skip 'realip not compiled in', 4 unless $has_realip;
	is(body_of($hdr . $GET_CLOSE, port => 2),
		'192.0.2.11|1000|192.0.2.11|1000',
		'real_ip_header proxy_protocol, trusted peer: the header address');
	like(body_of($hdr . $GET_CLOSE, port => 3) // '',
		qr/^127\.0\.0\.1\|\d+\|192\.0\.2\.11\|1000\z/,
		'real_ip_header proxy_protocol, untrusted peer: the peer');
	is((split /\|/, body_of(v1('TCP4 192.0.2.5 198.51.100.1 1 2')
		. "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\n"
		. "Connection: close\r\n\r\n", port => 4) // '')[0],
		'203.0.113.1', 'X-Forwarded-For trusted through the PROXY address');
	is((split /\|/, body_of(v1('TCP4 198.51.100.5 198.51.100.1 1 2')
		. "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\n"
		. "Connection: close\r\n\r\n", port => 4) // '')[0],
		'198.51.100.5', 'an untrusted PROXY address: X-Forwarded-For ignored');
}

# ---- configuration ------------------------------------------------------------------------------------
$t->write_file('flag.conf', "servers = ( { listen = [ \"127.0.0.1:1 proxy_protocol\","
	. " \"127.0.0.1:2 reuseport proxy_protocol backlog=5\" ]; locations = ( "
	. "{ path = \"/\"; return = \"200 x\"; } ); } );\n");
my ($rc, undef, $err) = $t->run_cmd('-t', '-c', "$dir/flag.conf");
is($rc, 0, '-t: proxy_protocol with other flags') or diag($err);
$t->write_file('bad.conf', "servers = ( { listen = \"127.0.0.1:1 proxy\";"
	. " locations = ( { path = \"/\"; return = \"200 x\"; } ); } );\n");
($rc, undef, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
is($rc, 1, '-t: unknown flag refused');
like($err, qr/unknown flag "proxy" \(known: .*proxy_protocol\)/,
	'-t: the known flags include proxy_protocol');

done_testing();
