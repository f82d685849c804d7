#!/usr/bin/perl
# Answers the core gives itself: OPTIONS * (about the server, not a
# resource), 405 for CONNECT and TRACE with the Allow field RFC 9110
# requires, and headers a handler adds to an error (Allow on a 405) kept
# on the error page.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
$t->write_file('www/a.txt', "a\n");
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    locations = (
      { path = "= /cost"; return = "200 costs $$5 or $$$arg_n"; },
      { path = "/"; root = "%%DIR%%/www"; }
    );
  }
);
EOF

# OPTIONS * is answered by the core, keeps the connection, and a request
# behind it is served normally
my @r = $t->pipeline("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
	. "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2);
is(scalar @r, 2, 'OPTIONS * then GET: two responses');
is($r[0]{status}, 200, 'OPTIONS *: 200');
is($r[0]{headers}{'content-length'}, '0', 'OPTIONS *: empty body');
like($r[0]{headers}{allow}, qr/\bGET\b.*\bHEAD\b.*\bOPTIONS\b/,
	'OPTIONS *: Allow lists the methods');
is($r[1]{body}, "a\n", 'the request after OPTIONS * is served');

for my $m (qw(TRACE CONNECT)) {
	my $target = $m eq 'CONNECT' ? 'example.com:443' : '/a.txt';
	my $raw = $t->raw("$m $target HTTP/1.1\r\nHost: x\r\n\r\n");
	my $r = PortierTest::parse_response($raw);
	is($r->{status}, 405, "$m: 405");
	like($r->{headers}{allow} // '', qr/\bGET\b/, "$m: with Allow");
	unlike($r->{headers}{allow} // '', qr/\b$m\b/, "$m: not allowed");
}

# a handler's Allow survives on the error page
my $r = $t->request('POST', '/a.txt', body => 'x');
is($r->{status}, 405, 'POST to a static file: 405');
is($r->{headers}{allow}, 'GET, HEAD', 'static 405: Allow: GET, HEAD');
like($r->{body}, qr/405 Method Not Allowed/, 'static 405: error page');

# "$$" is one literal '$'
is($t->get('/cost?n=7')->{body}, 'costs $5 or $7', '$$ in a template');

done_testing;
