#!/usr/bin/perl
# `return` (mod_rewrite): status with a text sent as given, redirects with
# their target as given, error pages, server-level and location-level
# returns, the variables a text may use, and no header splitting from
# request data reflected into a redirect target.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my $t = PortierTest->new;
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = [ "first.test", "*.other.test" ];
    locations = (
      { path = "= /text";     return = "200 hello"; },
      { path = "= /nl";       return = "200 line\n"; },
      { path = "= /spaces";   return = "200  two  spaces "; },
      { path = "= /empty";    return = "200 "; },
      { path = "= /int200";   return = 200; },
      { path = "= /typed";    default_type = "application/json";
                              return = "200 {\"a\":1}"; },
      { path = "= /204";      return = 204; },
      { path = "= /204text";  return = "204 not sent"; },
      { path = "= /301";      return = "301 /moved/here"; },
      { path = "= /302";      return = "302 relative/target?x=1#f"; },
      { path = "= /303";      return = "303 https://example.com/a?b=c"; },
      { path = "= /307";      return = "307 //cdn.example.com/x"; },
      { path = "= /308";      return = "308 /p%20q"; },
      { path = "= /hostvar";  return = "301 https://$host$request_uri"; },
      { path = "= /404";      return = 404; },
      { path = "= /410";      return = "410"; },
      { path = "= /500";      return = 500; },
      { path = "= /403text";  return = "403 go away"; },
      { path = "= /503text";  return = "503 back soon\n"; },
      { path = "= /418";      return = 418; },
      { path = "= /418text";  return = "418 short and stout"; },
      { path = "= /dollar";   return = "200 a$ b$.c$"; },
      { path = "= /status";   return = "202 status=$status"; },
      { path = "= /id";       return = "200 $request_id $request_id"; },
      { path = "= /vars";     return = "200 host=$host|arg_x=$arg_x|ua=$http_user_agent|hdr=$http_x_my_header|cookie=$cookie_a|raddr=$remote_addr|rport=$remote_port|saddr=$server_addr|sport=$server_port|scheme=$scheme|method=$request_method|ruri=$request_uri|uri=$uri|args=$args|qs=$query_string|proto=$server_protocol|sname=$server_name"; },
      { path = "/v/";         return = "200 uri=$uri|ruri=$request_uri|args=$args|arg_x=$arg_x"; },
      { path = "= /times";    return = "200 $msec|$time_iso8601|$request_time"; },
      { path = "/r/";         return = "302 https://$host$uri"; },
      { path = "/rel/";       return = "301 $uri/"; },
      { path = "= /next";     return = "302 /login?next=$arg_next&all=$args"; },
      { path = "/body/";      return = "200 [$uri]"; },
      { path = "/";           return = "200 location-root"; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "srv.test";
    return = "200 server-level $uri";
    locations = (
      { path = "/";        return = "200 location-level"; },
      { path = "= /exact"; return = "200 exact-location"; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "loc.test";
    locations = (
      { path = "/x"; return = "200 in-location"; }
    );
  }
);
EOF

my $r;

# ---- text as given ------------------------------------------------------

$r = $t->get('/text');
is($r->{status}, 200, '200 text: status');
is($r->{body}, 'hello', '200 text: body as given, no newline added');
is($r->{headers}{'content-length'}, 5, '200 text: Content-Length exact');
is($r->{headers}{'content-type'}, 'text/plain', 'Content-Type: default_type');
is($t->get('/nl')->{body}, "line\n", 'a newline in the text is kept, once');
is($t->get('/spaces')->{body}, ' two  spaces ',
	'text after the one separating space, spaces kept');
$r = $t->get('/empty');
is($r->{status}, 200, 'empty text: 200');
is($r->{headers}{'content-length'}, 0, 'empty text: Content-Length 0');
$r = $t->get('/int200');
is($r->{status}, 200, 'integer 200: 200');
is($r->{headers}{'content-length'}, 0, 'integer 200: empty body');
$r = $t->get('/typed');
is($r->{headers}{'content-type'}, 'application/json',
	'default_type of the location');
is($r->{body}, '{"a":1}', 'escaped quotes in the text');
$r = $t->head('/text');
is($r->{headers}{'content-length'}, 5, 'HEAD: Content-Length of the text');
is($r->{body}, '', 'HEAD: no body');
$r = $t->request('POST', '/text', body => 'x' x 1000);
is($r->{body}, 'hello', 'POST: the body is discarded, the text sent');

for my $p ('/204', '/204text') {
	$r = $t->get($p);
	is($r->{status}, 204, "$p: 204");
	is($r->{body}, '', "$p: no body");
	like($r->{raw}, qr/\r\n\r\n\z/, "$p: nothing after the head");
	ok(!exists $r->{headers}{'content-length'}, "$p: no Content-Length");
}

# several returns on one connection: lengths are exact
my @rs = $t->pipeline(join('', map { "GET $_ HTTP/1.1\r\nHost: first.test\r\n\r\n" }
	'/text', '/nl', '/204', '/empty', '/404', '/text'), 6);
is_deeply([ map { $_->{status} } @rs ], [ 200, 200, 204, 200, 404, 200 ],
	'pipelined returns: statuses in order');
is_deeply([ map { $_->{body} } @rs[0, 1, 3, 5] ],
	[ 'hello', "line\n", '', 'hello' ], 'pipelined returns: bodies');

# ---- redirects ----------------------------------------------------------

for my $c (
	[ '/301', 301, '/moved/here' ],
	[ '/302', 302, 'relative/target?x=1#f' ],
	[ '/303', 303, 'https://example.com/a?b=c' ],
	[ '/307', 307, '//cdn.example.com/x' ],
	[ '/308', 308, '/p%20q' ],
) {
	$r = $t->get($c->[0]);
	is($r->{status}, $c->[1], "$c->[0]: status");
	is($r->{headers}{location}, $c->[2], "$c->[0]: Location as given");
	is($r->{headers}{'content-length'}, length $r->{body},
		"$c->[0]: a complete body");
}
$r = $t->get('/hostvar?a=%41&b', host => 'WWW.Other.Test:8080');
is($r->{headers}{location}, 'https://www.other.test/hostvar?a=%41&b',
	'https://$host$request_uri: host lower-cased without port, target raw');

# ---- error pages and texts with error codes ------------------------------

for my $c ([ '/404', 404, 'Not Found' ], [ '/410', 410, 'Gone' ],
	[ '/500', 500, 'Internal Server Error' ]) {
	$r = $t->get($c->[0]);
	is($r->{status}, $c->[1], "$c->[0]: status");
	is($r->{headers}{'content-type'}, 'text/html', "$c->[0]: error page");
	like($r->{body}, qr/\Q$c->[1] $c->[2]\E/, "$c->[0]: the page names it");
}
$r = $t->get('/403text');
is($r->{status}, 403, '403 with a text: 403');
is($r->{body}, 'go away', '403 with a text: the text, not the page');
is($r->{headers}{'content-type'}, 'text/plain', '403 text: default_type');
$r = $t->get('/503text');
is($r->{status}, 503, '503 with a text');
is($r->{body}, "back soon\n", '503 with a text: body');

# a code without a standard reason phrase
$r = $t->get('/418text');
is($r->{status}, 418, '418 with a text: 418');
is($r->{body}, 'short and stout', '418 with a text: body');
$r = $t->get('/418');
is($r->{status}, 418, '418 without a text: the code itself');
like($r->{raw}, qr{^HTTP/1\.1 418 \r\n}, '418: empty reason phrase');
like($r->{body}, qr{<title>418</title>}, '418: error page with the code');

# ---- server level and location level ------------------------------------

is($t->get('/anything', host => 'srv.test')->{body}, 'server-level /anything',
	'server-level return answers before any location');
is($t->get('/exact', host => 'srv.test')->{body}, 'server-level /exact',
	'server-level return beats even an exact location');
is($t->get('/x', host => 'loc.test')->{body}, 'in-location',
	'location-level return');
is($t->get('/y', host => 'loc.test')->{status}, 404,
	'no location, no server return: 404');
is($t->get('/', host => 'first.test')->{body}, 'location-root',
	'location-level return of /');

# ---- variables ------------------------------------------------------------

is($t->get('/dollar')->{body}, 'a$ b$.c$', 'a $ without a name is kept');
is($t->get('/status')->{body}, 'status=202', '$status is the return code');

{
	my $s = $t->connect_to;
	syswrite($s, "GET /vars?x=1&y=2&x=3 HTTP/1.1\r\nHost: Sub.Other.TEST.:81\r\n"
		. "User-Agent: tester/1.0\r\nX-My-Header: my value\r\n"
		. "Cookie: b=2; a=cookie-a; c=3\r\nConnection: close\r\n\r\n");
	my $raw = PortierTest::read_until($s, undef, 5);
	my $lport = $s->sockport;
	close $s;
	my %v = map { split /=/, $_, 2 }
		split /\|/, PortierTest::parse_response($raw)->{body};
	is($v{host}, 'sub.other.test', '$host: lower case, no port, no dot');
	is($v{arg_x}, '1', '$arg_x: first occurrence');
	is($v{ua}, 'tester/1.0', '$http_user_agent');
	is($v{hdr}, 'my value', '$http_x_my_header: _ for -');
	is($v{cookie}, 'cookie-a', '$cookie_a');
	is($v{raddr}, '127.0.0.1', '$remote_addr');
	is($v{rport}, $lport, '$remote_port: the client port');
	is($v{saddr}, '127.0.0.1', '$server_addr');
	is($v{sport}, $t->port(0), '$server_port');
	is($v{scheme}, 'http', '$scheme');
	is($v{method}, 'GET', '$request_method');
	is($v{ruri}, '/vars?x=1&y=2&x=3', '$request_uri');
	is($v{uri}, '/vars', '$uri');
	is($v{args}, 'x=1&y=2&x=3', '$args');
	is($v{qs}, 'x=1&y=2&x=3', '$query_string');
	is($v{proto}, 'HTTP/1.1', '$server_protocol');
	is($v{sname}, 'first.test', '$server_name: first name of the server');
}
$r = $t->raw("GET /vars HTTP/1.0\r\n\r\n");
like(PortierTest::parse_response($r)->{body},
	qr/^host=first\.test\|arg_x=\|ua=\|hdr=\|cookie=\|.*\|args=\|.*proto=HTTP\/1\.0/,
	'no Host: $host is the first server_name; missing values are empty');
$r = $t->head('/id');
is($r->{headers}{'content-length'}, 65, 'HEAD of a text with variables');
is($r->{body}, '', '... no body');
like($t->request('DELETE', '/vars')->{body}, qr/\|method=DELETE\|/,
	'$request_method DELETE');

$r = $t->get('/v/./a/../%41%2fb/?X=a%20b&x=2');
my %v = map { split /=/, $_, 2 } split /\|/, $r->{body};
is($v{uri}, '/v/A/b/', '$uri: decoded and normalized');
is($v{ruri}, '/v/./a/../%41%2fb/?X=a%20b&x=2', '$request_uri: raw');
is($v{args}, 'X=a%20b&x=2', '$args: raw');
is($v{arg_x}, 'a%20b', '$arg_x: name without regard to case, not decoded');

my ($id1, $id1b) = split / /, $t->get('/id')->{body};
my ($id2) = split / /, $t->get('/id')->{body};
like($id1, qr/^[0-9a-f]{32}$/, '$request_id: 32 hex digits');
is($id1b, $id1, '$request_id: the same within a request');
isnt($id2, $id1, '$request_id: differs per request');
my %ids;
$ids{ (split / /, $t->get('/id')->{body})[0] }++ for 1 .. 20;
is(scalar keys %ids, 20, '$request_id: 20 requests, 20 ids');

like($t->get('/times')->{body},
	qr/^\d{10}\.\d{3}\|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\|\d+\.\d{3}$/,
	'$msec, $time_iso8601, $request_time formats');

# ---- header splitting ----------------------------------------------------

sub no_split {
	my ($r, $name) = @_;
	my ($head) = split /\r\n\r\n/, $r->{raw}, 2;
	my @names = map { lc $_->[0] } @{ $r->{header_list} };
	ok(!grep({ $_ eq 'set-cookie' || $_ eq 'x-injected' } @names),
		"$name: no injected field");
	unlike($r->{headers}{location} // '', qr/[\r\n\0 ]/,
		"$name: no CR, LF, NUL or space in Location");
	is(scalar(() = $head =~ /\r\n/g) + 1,
		scalar(() = $head =~ /\n/g) + 1, "$name: only CRLF line ends");
}

$r = $t->get('/r/a%0d%0aSet-Cookie:%20x=1');
is($r->{status}, 302, 'decoded CRLF in $uri: still a redirect');
no_split($r, 'CRLF in $uri');
is($r->{headers}{location}, 'https://localhost/r/a%0D%0ASet-Cookie:%20x=1',
	'CRLF and space from $uri are percent-encoded in Location');
$r = $t->get('/r/%0aX-Injected:1');
no_split($r, 'LF in $uri');
$r = $t->get('/r/%0dX-Injected:1');
no_split($r, 'CR in $uri');
$r = $t->get('/r/%09tab%7f%01');
is($r->{headers}{location}, 'https://localhost/r/%09tab%7F%01',
	'other control bytes are encoded too');
$r = $t->get('/r/caf%C3%A9');
is($r->{headers}{location}, 'https://localhost/r/caf%C3%A9',
	'non-ASCII bytes are encoded');
$r = $t->get('/r/already%2541');
is($r->{headers}{location}, 'https://localhost/r/already%41',
	'a % from the decoded path is left as is');
$r = $t->get('/rel/x%0D%0AX-Injected:%201');
no_split($r, 'relative target from $uri');
is($r->{headers}{location}, '/rel/x%0D%0AX-Injected:%201/',
	'relative target, encoded');
$r = $t->get('/next?next=%0d%0aSet-Cookie:%20x=1');
no_split($r, '$arg_next');
is($r->{headers}{location},
	'/login?next=%0d%0aSet-Cookie:%20x=1&all=next=%0d%0aSet-Cookie:%20x=1',
	'$arg_ and $args are raw: reflected as sent, never decoded');
# in a body a decoded CRLF is only data, counted by Content-Length
$r = $t->get('/body/a%0d%0aX-Injected:%201');
is($r->{body}, "[/body/a\r\nX-Injected: 1]", '$uri in a body: decoded bytes');
is($r->{headers}{'content-length'}, length $r->{body},
	'... inside an exact Content-Length');
ok(!exists $r->{headers}{'x-injected'}, '... no injected field');

$t->stop;

# ---- configuration errors --------------------------------------------------

my $c = PortierTest->new;
for my $bad (
	[ 'return = "199 x";',        'code below 200' ],
	[ 'return = 600;',            'code above 599' ],
	[ 'return = "301";',          'redirect without a target' ],
	[ 'return = "ok";',           'no code' ],
	[ 'return = "200x";',         'code glued to text' ],
	[ 'return = true;',           'wrong type' ],
	[ 'return = "200 $nosuchvar";', 'unknown variable' ],
	[ 'return = "200 $5";',       '$ and a digit is a variable name' ],
) {
	$c->config(<<"EOF");
servers = (
  { listen = "127.0.0.1:%%PORT_0%%";
    $bad->[0]
  }
);
EOF
	my ($code, $out, $err) = $c->run_cmd('-t', '-c', $c->conf_path);
	isnt($code, 0, "config error: $bad->[1]");
	like($out . $err, qr/portier\.conf:\d+: .*(return|variable)/,
		"$bad->[1]: file:line and the setting");
}
$c->config(<<'EOF');
return = "200 main";
servers = ( { listen = "127.0.0.1:%%PORT_0%%"; } );
EOF
my ($code) = $c->run_cmd('-t', '-c', $c->conf_path);
isnt($code, 0, 'return at main scope: refused');

done_testing;
