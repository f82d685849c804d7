#!/usr/bin/perl
# The access log: the combined format (exact line), json (one valid JSON
# object per line), templates with variables, escaping of what clients
# send, "off" and per-location logs, inheritance from the main scope, and
# buffered logs: written after `flush`, when the buffer is full, and on
# USR1, reload and exit.
#
# Log lines are written after the response, so every positive check polls
# with a bound; a negative check ("not written yet") is only made after a
# later event that is known to have happened (a later line of the same
# worker was written, or the flush interval of another file passed).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
my $dir = $t->dir;
$t->write_file('www/file.txt', 'x' x 1234);
$t->write_file('www/small.txt', '0123456789');

$t->config(<<'EOF')->run;
access_log = "%%DIR%%/main.log";
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "log.test";
    access_log = "%%DIR%%/combined.log";
    root = "%%DIR%%/www";
    locations = (
      { path = "/nolog/"; access_log = "off"; return = "200 not logged"; },
      { path = "/json/";
        access_log = { path = "%%DIR%%/json.log"; format = "json"; };
        return = "200 json"; },
      { path = "/custom/";
        access_log = { path = "%%DIR%%/custom.log";
          format = "$request_method $uri $status $body_bytes_sent $request_time [$arg_a] \"$http_x_h\" $request_id $msec $time_iso8601 $server_port"; };
        return = "200 $request_id"; },
      { path = "/buf/";
        access_log = { path = "%%DIR%%/buf.log"; buffer = "64k"; flush = "1s"; };
        return = "200 buffered"; },
      { path = "/hold/";
        access_log = { path = "%%DIR%%/hold.log"; buffer = "64k"; flush = "1h"; };
        return = "200 held"; },
      { path = "/full/";
        access_log = { path = "%%DIR%%/full.log"; buffer = "1k"; flush = "1h"; };
        return = "200 full"; },
      { path = "/custom-json/";
        access_log = { path = "%%DIR%%/cjson.log"; format = "json"; buffer = 0; }; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    return = "200 inherits the main log";
  }
);
EOF

sub lines_of {
	my ($name) = @_;
	my $c = $t->read_file($name) // '';
	return split /\n/, $c;
}

# Poll until file has a line matching re; returns that line or undef.
sub wait_line {
	my ($name, $re, $timeout) = @_;
	my $found;
	PortierTest::wait_for(sub {
		($found) = grep { $_ =~ $re } lines_of($name);
		return defined $found;
	}, $timeout // 10);
	return $found;
}

my $r;

# ---- combined ------------------------------------------------------------

$r = $t->get('/file.txt', headers => [ 'Referer: http://ref.test/p?q=1',
	'User-Agent: agent/1.0 (x)' ]);
is($r->{status}, 200, 'static file');
my $line = wait_line('combined.log', qr{/file\.txt});
like($line, qr{^127\.0\.0\.1 - - \[\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /file\.txt HTTP/1\.1" 200 1234 "http://ref\.test/p\?q=1" "agent/1\.0 \(x\)"$},
	'combined: the exact line, $body_bytes_sent = file size');

$t->get('/small.txt', headers => [ 'Authorization: Basic dXNlcjpwYXNz' ]);
like(wait_line('combined.log', qr{/small\.txt}),
	qr{^127\.0\.0\.1 - user \[[^]]+\] "GET /small\.txt HTTP/1\.1" 200 10 "-" "-"$},
	'combined: $remote_user, empty values as -');

$t->get('/small.txt?r', headers => [ 'Range: bytes=0-3' ]);
like(wait_line('combined.log', qr{small\.txt\?r}), qr{" 206 4 "},
	'206: $body_bytes_sent counts the range');
$t->head('/small.txt?h');
like(wait_line('combined.log', qr{small\.txt\?h}), qr{"HEAD /small\.txt\?h HTTP/1\.1" 200 0 },
	'HEAD: no body bytes');
$t->get('/missing.txt');
my $page = $t->get('/missing.txt')->{headers}{'content-length'};
like(wait_line('combined.log', qr{missing\.txt}), qr{" 404 $page "},
	'404: the error page is counted');

# escaping: quotes, backslashes, tabs and bytes outside ASCII
my $ua = "a\"b\\c\td\xc3\xa9\xff";
$r = $t->raw("GET /small.txt?esc=\"q\" HTTP/1.1\r\nHost: log.test\r\n"
	. "User-Agent: $ua\r\nConnection: close\r\n\r\n");
like($r, qr{^HTTP/1\.1 200 }, 'request with bytes to escape');
like(wait_line('combined.log', qr{esc=}),
	qr{"GET /small\.txt\?esc=\\x22q\\x22 HTTP/1\.1" 200 10 "-" "a\\x22b\\x5Cc\\x09d\\xC3\\xA9\\xFF"$},
	'combined: " \\ tab and non-ASCII written as \\xHH');
my ($escaped) = grep { /esc=/ } lines_of('combined.log');
unlike($escaped, qr/[\x00-\x1f\x7f-\xff]/, 'combined: the line is printable ASCII');

# a request refused by the parser is logged with the server's log
$t->raw("GET /dup HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
like(wait_line('combined.log', qr{/dup}), qr{"GET /dup HTTP/1\.1" 400 \d+ },
	'a 400 from the parser is logged');

# ---- off and per-location logs --------------------------------------------

$t->get('/nolog/x');
$t->get('/json/a');
$t->get('/small.txt?after-nolog');
ok(wait_line('combined.log', qr{after-nolog}), 'a later request is logged');
ok(!grep({ m{/nolog/} } lines_of('combined.log')),
	'access_log "off" in a location: not logged');
ok(wait_line('json.log', qr{/json/a}), 'a location with its own log');
ok(!grep({ m{/json/} } lines_of('combined.log')),
	'... and not in the server log');
ok(!grep({ m{/json/|/nolog/|file\.txt} } lines_of('main.log')),
	'... nor in the main log');

$r = $t->get('/', port => $t->port(1));
like(wait_line('main.log', qr{"GET / HTTP}),
	qr{" 200 $r->{headers}{'content-length'} "-" "-"$},
	'a server without access_log inherits the main one');

# ---- json ----------------------------------------------------------------

$r = $t->raw("GET /json/b?x=%22\"\\ HTTP/1.1\r\nHost: Log.Test\r\n"
	. "User-Agent: $ua\r\nReferer: r\xe2\x82\xac\r\nConnection: close\r\n\r\n");
like($r, qr{^HTTP/1\.1 200 }, 'json request');
my $jl = wait_line('json.log', qr{/json/b});
my $j = eval { JSON::PP->new->utf8->decode($jl) };
ok($j, 'json: the line is valid JSON') or diag("$@: $jl");
$j //= {};
is_deeply([ sort keys %$j ], [ sort qw(time remote_addr request_id host request
	status body_bytes_sent request_time http_referer http_user_agent) ],
	'json: the documented fields');
like($j->{time} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/, 'json: time');
is($j->{remote_addr}, '127.0.0.1', 'json: remote_addr');
like($j->{request_id} // '', qr/^[0-9a-f]{32}$/, 'json: request_id');
is($j->{host}, 'log.test', 'json: host');
is($j->{request}, "GET /json/b?x=%22\"\\ HTTP/1.1", 'json: request, escaped');
is($j->{status}, 200, 'json: status');
is($j->{body_bytes_sent}, 4, 'json: body_bytes_sent');
like($j->{request_time}, qr/^\d+(\.\d+)?$/, 'json: request_time is a number');
like($jl, qr/"status":200,/, 'json: numbers unquoted');
is($j->{http_referer}, "r\x{20ac}", 'json: valid UTF-8 passes');
is($j->{http_user_agent}, "a\"b\\c\td\x{e9}\x{ff}",
	'json: quotes, backslash, tab; a byte that is not UTF-8 as \u00XX');
like($jl, qr/\\u0009/, 'json: tab as \u0009');
like($jl, qr/\\u00ff/, 'json: the stray byte 0xff as \u00ff');

$t->get('/json/c');
$j = eval { decode_json(wait_line('json.log', qr{/json/c})) } // {};
is($j->{http_referer}, '-', 'json: an empty value is "-"');

# long values are cut, never the text of the format, and a line stays
# valid: a value of tabs grows six times in json and four times in
# combined, and targets of six lengths put the end of the room for the
# value at every offset modulo six
my $tabs = "\t" x 7000;
for my $k (0 .. 5) {
	my $path = '/json/long' . ('a' x $k);
	$t->raw("GET $path HTTP/1.1\r\nHost: x\r\nReferer: a${tabs}z\r\n"
		. "User-Agent: short-ua\r\nConnection: close\r\n\r\n");
	$jl = wait_line('json.log', qr{\Q$path\E HTTP});
	my $d = eval { decode_json($jl) };
	ok($d, "json: a line with a cut value is valid JSON ($k)")
		or diag(substr($jl // '', -60));
	like($d->{http_referer} // '', qr/^a\t{1000,}$/,
		"json: the long value is cut, not dropped ($k)");
	ok(defined $d->{http_user_agent},
		"json: the fields after it are kept ($k)");
	$path = '/small.txt?long' . ('a' x $k);
	$t->raw("GET $path HTTP/1.1\r\nHost: x\r\nUser-Agent: \x80${tabs}z\r\n"
		. "Connection: close\r\n\r\n");
	like(wait_line('combined.log', qr{\Q$path\E HTTP}),
		qr{"-" "\\x80(\\x09)+"$},
		"combined: a cut value keeps its closing quote ($k)");
}

# json format of a static file (sendfile), unbuffered group
$t->get('/custom-json/nofile');
$j = eval { decode_json(wait_line('cjson.log', qr{custom-json/nofile})) } // {};
is($j->{status}, 404, 'json: status of a missing file');

# ---- templates ----------------------------------------------------------

$r = $t->get('/custom/p?a=1', headers => [ 'X-H: v"v' ]);
my $id = $r->{body};
$line = wait_line('custom.log', qr{/custom/p});
like($line, qr{^GET /custom/p 200 $r->{headers}{'content-length'} \d+\.\d{3} \[1\] "v\\x22v" [0-9a-f]{32} \d+\.\d{3} \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \d+$},
	'template: variables and escaping');
like($line, qr{ \Q$id\E }, '$request_id: the same in the response and the log');
like($line, qr{ $t->{ports}[0]$}, '$server_port');
$t->get('/custom/q');
like(wait_line('custom.log', qr{/custom/q}), qr{ \[-\] "-" },
	'template: empty values as -');

# ---- buffered logs --------------------------------------------------------

my $t0 = time;
$t->get('/buf/one');
my $got = wait_line('buf.log', qr{/buf/one}, 10);
my $elapsed = time - $t0;
ok($got, 'buffered line written after the flush interval');
cmp_ok($elapsed, '>=', 0.5, 'buffered line not written at once (flush 1s)');
cmp_ok($elapsed, '<', 5, 'buffered line written within a few flush intervals');

$t->get('/hold/one');
$t->get('/buf/two');
ok(wait_line('buf.log', qr{/buf/two}), 'a later buffered line of another file');
ok(!grep({ m{/hold/one} } lines_of('hold.log')),
	'flush 1h: the line is still in the buffer');

$t->signal('USR1');
ok(wait_line('hold.log', qr{/hold/one}), 'USR1 flushes the buffer');

# a full buffer is written without waiting
$t->get("/full/$_") for 1 .. 20;
ok(PortierTest::wait_for(sub { lines_of('full.log') > 0 }),
	'a full buffer is written');
my @full = lines_of('full.log');
cmp_ok(scalar @full, '<', 20, '... and the rest of the lines wait');
ok(!grep({ !m{^127\.0\.0\.1 .* "GET /full/\d+ HTTP/1\.1" 200 4 } } @full),
	'... written as whole lines');

# reload (HUP): the old workers write their buffers when they exit
$t->get('/hold/two');
my @old = $t->worker_pids;
$t->signal('HUP');
ok(wait_line('hold.log', qr{/hold/two}), 'reload flushes the buffer');
ok(PortierTest::wait_for(sub { !grep { PortierTest::alive($_) } @old }),
	'old workers gone after reload');

# exit (QUIT)
PortierTest::wait_for(sub { $t->worker_pids >= 1 });
$t->get('/hold/three');
$t->get('/full/21');
$t->stop;
ok(grep({ m{/hold/three} } lines_of('hold.log')), 'exit flushes the buffer');
is(scalar(grep { m{/full/\d+ } } lines_of('full.log')), 21,
	'exit: every buffered line written, once');

done_testing;
