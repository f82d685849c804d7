#!/usr/bin/perl
# mod_realip: real_ip_from and real_ip_header. A request from a trusted
# address takes its client address from X-Forwarded-For (the rightmost
# untrusted element, all field lines, IPv4 and IPv6, with or without a
# port), from X-Real-IP or any named field; an untrusted peer or an
# invalid element changes nothing. The address is the one of
# $remote_addr, the access and error logs, and, through the proxy,
# X-Forwarded-For and ip_hash. Settings are per server (a name-based
# server's own apply) and inherited from main.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(realip rewrite));

my $t = PortierTest->new;
my $dir = $t->dir;
my $has_proxy = PortierTest::modules()->{proxy};
my @b;
my ($proxy_conf, $ups) = ('', '');
if ($has_proxy) {
	require PortierBackend;
	@b = map { PortierBackend->new(name => "b$_", dir => $dir) } 1 .. 2;
	$ups = 'upstreams = { app = { balance = "ip_hash"; servers = ( '
		. join(', ', map { '{ address = "127.0.0.1:' . $_->port . '"; }' }
			@b) . ' ); }; };';
	$proxy_conf = <<'EOF';
  {
    listen = "127.0.0.1:%%PORT_3%%";
    real_ip_from = "127.0.0.1";
    locations = ( { path = "/"; proxy_pass = "app"; } );
  },
EOF
}

my $show = '"200 $remote_addr|$remote_port|$realip_remote_addr|'
	. '$realip_remote_port"';
my $conf = <<"EOF";
$ups
real_ip_from = "10.0.0.0/8";
servers = (
  $proxy_conf
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "a.test";
    real_ip_from = [ "127.0.0.1", "2001:db8::/32", "192.0.2.0/24" ];
    access_log = { path = "%%DIR%%/access.log"; format = "\$remote_addr \$uri"; };
    client_max_body_size = 10;
    locations = ( { path = "/"; return = $show; } );
  },
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "main.test";
    locations = ( { path = "/"; return = $show; } );
  },
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "own.test";
    real_ip_from = "127.0.0.0/8";
    locations = ( { path = "/"; return = $show; } );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    real_ip_from = "127.0.0.0/8";
    real_ip_header = "X-Real-IP";
    locations = ( { path = "/"; return = $show; } );
  },
  {
    listen = "127.0.0.1:%%PORT_2%%";
    real_ip_from = "127.0.0.1/32";
    real_ip_header = "CF-Connecting-IP";
    locations = ( { path = "/"; return = $show; } );
  }
);
EOF
$t->config($conf)->run;

# "addr|port|original addr|original port" as seen by a server
sub seen {
	my ($port, $host, @h) = @_;
	my $r = $t->get('/', port => $t->port($port), host => $host,
		headers => \@h);
	return $r->{body} // '';
}
sub addr { (split /\|/, seen(@_))[0] // '' }

# ---- X-Forwarded-For ------------------------------------------------------------
my ($a, $p, $ra, $rp) = split /\|/, seen(0, 'a.test');
is($a, '127.0.0.1', 'no field: the peer');
ok($p > 0, 'no field: the peer port');
is($ra, '127.0.0.1', '$realip_remote_addr without a field');

($a, $p, $ra, $rp) = split /\|/, seen(0, 'a.test',
	'X-Forwarded-For: 203.0.113.7');
is($a, '203.0.113.7', 'XFF from a trusted peer: its address');
is($p, 0, 'no port in the element: 0');
is($ra, '127.0.0.1', '$realip_remote_addr keeps the peer');
ok($rp > 0, '$realip_remote_port keeps the peer port');

my @cases = (
	[ '198.51.100.1, 203.0.113.7', '203.0.113.7', 'rightmost untrusted' ],
	[ '203.0.113.7, 127.0.0.1', '203.0.113.7', 'trusted skipped' ],
	[ '203.0.113.7,192.0.2.9 , 127.0.0.1', '203.0.113.7',
	  'trusted network skipped, spaces around commas' ],
	[ '192.0.2.1, 127.0.0.1', '192.0.2.1', 'all trusted: the leftmost' ],
	[ '2001:db9::1', '2001:db9::1', 'IPv6' ],
	[ '203.0.113.8, 2001:db8::5', '203.0.113.8', 'trusted IPv6 network skipped' ],
	[ '[2001:db9::2]:443', '2001:db9::2', 'bracketed IPv6 with a port' ],
	[ '[2001:db9::3]', '2001:db9::3', 'bracketed IPv6' ],
	[ '203.0.113.9:8080', '203.0.113.9', 'IPv4 with a port' ],
	[ 'garbage', '127.0.0.1', 'not an address: unchanged' ],
	[ '203.0.113.7, unknown', '127.0.0.1', 'invalid element on the right: unchanged' ],
	[ 'unknown, 203.0.113.7', '203.0.113.7', 'invalid element past the client: ignored' ],
	[ '203.0.113.7:99999', '127.0.0.1', 'port out of range: unchanged' ],
	[ '[2001:db9::1', '127.0.0.1', 'unclosed bracket: unchanged' ],
	[ '1.2.3.4.5', '127.0.0.1', 'five octets: unchanged' ],
	[ '203.0.113.7,', '203.0.113.7', 'a trailing comma' ],
	[ '', '127.0.0.1', 'empty field: unchanged' ],
);
for my $c (@cases) {
	my ($xff, $want, $name) = @$c;
	is(addr(0, 'a.test', "X-Forwarded-For: $xff"), $want, "XFF: $name");
}
is((split /\|/, seen(0, 'a.test', 'X-Forwarded-For: [2001:db9::2]:443'))[1],
	443, 'the element port becomes $remote_port');
is(addr(0, 'a.test', 'X-Forwarded-For: 198.51.100.1',
	'X-Forwarded-For: 203.0.113.9, 127.0.0.1'), '203.0.113.9',
	'two field lines: read as one list, from the last');
is(addr(0, 'a.test', 'X-Forwarded-For: 198.51.100.1',
	'X-Forwarded-For: 127.0.0.1'), '198.51.100.1',
	'two field lines: the walk goes on into the first');
is(addr(0, 'a.test', 'x-forwarded-for: 203.0.113.10'), '203.0.113.10',
	'field name in any case');
is(addr(0, 'a.test', 'X-Real-IP: 203.0.113.10'), '127.0.0.1',
	'the default field is X-Forwarded-For alone');

# ---- per server, inherited -------------------------------------------------------
is(addr(0, 'main.test', 'X-Forwarded-For: 203.0.113.7'), '127.0.0.1',
	'main real_ip_from (10/8) does not trust 127.0.0.1');
is(addr(0, 'own.test', 'X-Forwarded-For: 203.0.113.7'), '203.0.113.7',
	'a name-based server uses its own real_ip_from');

# ---- other fields ----------------------------------------------------------------------
is(addr(1, 'x', 'X-Real-IP: 198.51.100.20'), '198.51.100.20', 'X-Real-IP');
is(addr(1, 'x', 'X-Forwarded-For: 198.51.100.20'), '127.0.0.1',
	'X-Real-IP configured: X-Forwarded-For ignored');
is(addr(2, 'x', 'CF-Connecting-IP: 2001:db8:1::9'), '2001:db8:1::9',
	'any field name');
is(addr(2, 'x', 'CF-Connecting-IP: 127.0.0.1'), '127.0.0.1',
	'a trusted address alone is taken as it is');

# ---- logs ---------------------------------------------------------------------------------
$t->get('/logged', port => $t->port(0), host => 'a.test',
	headers => [ 'X-Forwarded-For: 203.0.113.77' ]);
ok(PortierTest::wait_for(sub {
	($t->read_file('access.log') // '') =~ m{^203\.0\.113\.77 /logged$}m }, 5),
	'access log: the real address');
my $r = $t->request('POST', '/big', port => $t->port(0), host => 'a.test',
	headers => [ 'X-Forwarded-For: 203.0.113.78' ], body => 'x' x 100);
is($r->{status}, 413, '413 for a large body');
ok($t->wait_log(qr/too large body.*client: 203\.0\.113\.78/),
	'error log: the real address');

# ---- through the proxy -----------------------------------------------------------------
SKIP: {
	skip 'proxy not compiled in', 4 unless $has_proxy;
	my $pr = $t->get('/echo', port => $t->port(3), host => 'x',
		headers => [ 'X-Forwarded-For: 198.51.100.1, 203.0.113.50' ]);
	like($pr->{body} // '', qr/^X-Forwarded-For: 198\.51\.100\.1, 203\.0\.113\.50, 203\.0\.113\.50\r$/mi,
		'X-Forwarded-For to the backend ends with the real address');
	my %map;
	my $stable = 1;
	for my $round (1 .. 2) {
		for my $n (1 .. 16) {
			my $ip = "198.51.$n.1";
			my $resp = $t->get('/', port => $t->port(3), host => 'x',
				headers => [ "X-Forwarded-For: $ip" ]);
			my $be = $resp->{headers}{'x-backend'} // '?';
			$stable = 0 if exists $map{$ip} && $map{$ip} ne $be;
			$map{$ip} = $be;
		}
	}
	ok($stable, 'ip_hash: one real address, one backend');
	my %used = map { $_ => 1 } values %map;
	is(scalar(keys %used), 2, 'ip_hash: real addresses spread over both');
	ok(!$used{'?'}, 'ip_hash: every request answered');
}

# ---- configuration errors -------------------------------------------------------------
for my $bad ([ 'real_ip_from = "10.0.0.0/33";', qr/"10\.0\.0\.0\/33" is not an address/ ],
	     [ 'real_ip_from = "example.com";', qr/not an address or CIDR/ ],
	     [ 'real_ip_from = "10.0.0.0/";', qr/not an address/ ],
	     [ 'real_ip_header = "X Bad";', qr/is not a field name/ ]) {
	my ($line, $re) = @$bad;
	$t->write_file('bad.conf', "$line\nservers = ( { listen = "
		. "\"127.0.0.1:1\"; locations = ( { path = \"/\"; return = "
		. "\"200 x\"; } ); } );\n");
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
	is($rc, 1, "-t refuses: $line");
	like($err, qr/bad\.conf:1: .*$re/, "-t says why: $line");
}

done_testing();
