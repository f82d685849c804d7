#!/usr/bin/perl
# Strict request parsing seen from a raw socket (RFC 9112, portier.conf(5)
# HTTP HANDLING): every rejection of the issue, and the neighbours that
# must be accepted. One table (after __DATA__), one loop.
#
# Each case's bytes are sent in one write, followed by a pipelined
#   GET /second HTTP/1.1 / Host: localhost / Connection: close
# unless the case says "nosecond". A rejected request must be answered
# with its status and "Connection: close", then the server closes (EOF)
# and the request behind it gets no answer. A case marked "keepalive" must
# instead be answered and leave the connection usable: the second request
# is answered too.
#
# Keys of a case (format: t/lib/PortierHTTP.pm):
#   status N     expected status of the first response (required)
#   keepalive    the connection stays open (default: it must close)
#   body TEXT    exact body of the first response
#   head         the first request is a HEAD (its response has no body)
#   nosecond     send no second request
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my $t = PortierTest->new;
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = [ "localhost", "example.com" ];
    large_header_buffer = "1k";
    max_headers = 20;
    locations = (
      { path = "/"; return = "200 host=$host uri=$uri"; },
      { path = "= /second"; return = "200 second"; },
      { path = "/small/"; client_max_body_size = "1k"; return = "200 small"; }
    );
  }
);
EOF

my $second = "GET /second HTTP/1.1\r\nHost: localhost\r\n"
	. "Connection: close\r\n\r\n";
my @cases = read_corpus(\*DATA);
cmp_ok(scalar @cases, '>=', 60, 'the corpus has enough cases');

for my $c (@cases) {
	my $k = $c->{keys};
	my $name = "$c->{name} (line $c->{line})";
	die "$name: no status\n" unless $k->{status};
	my $keep = exists $k->{keepalive};
	my $s = connect_raw($t);
	write_all($s, $c->{wire} . ($k->{nosecond} ? '' : $second));
	my $res = read_responses($s, 2, until_eof => 1, timeout => 5,
		head_only => [ exists $k->{head} ]);
	close $s;
	my @r = @{ $res->{responses} };
	my $first = $r[0] // { status => 0, headers => {} };
	my $conn = lc($first->{headers}{connection} // '');
	my @fail;
	push @fail, "status $first->{status}, expected $k->{status}[0]"
		if $first->{status} != $k->{status}[0];
	push @fail, "body '" . ($first->{body} // '') . "', expected "
		. "'$k->{body}[0]'"
		if $k->{body} && ($first->{body} // '') ne $k->{body}[0];
	if ($keep) {
		push @fail, "says Connection: close" if $conn eq 'close';
		push @fail, 'the pipelined request was not answered'
			unless @r == 2 && $r[1]{status} == 200
			&& $r[1]{body} eq 'second';
	} else {
		push @fail, "Connection: '$conn', expected close"
			unless $conn eq 'close';
		push @fail, scalar(@r) . ' responses, expected one' if @r > 1;
		push @fail, 'bytes after the response: '
			. substr($res->{rest}, 0, 40)
			if length $res->{rest};
	}
	push @fail, 'the server did not close'
		unless $res->{eof} || $res->{reset};
	ok(!@fail, $name) or diag(join("\n", @fail));
}

# The server survived all of it.
my $r = $t->get('/alive');
is($r->{status}, 200, 'still serving after the corpus');

done_testing;

__DATA__
# ---- request line ------------------------------------------------------

=== NUL in the target
status 400
| GET /a\0b HTTP/1.1
| Host: localhost
|

=== NUL in the method
status 400
| GE\0T / HTTP/1.1
| Host: localhost
|

=== NUL after the version
status 400
| GET / HTTP/1.1\0
| Host: localhost
|

=== bare CR in the target
status 400
| GET /a\rb HTTP/1.1
| Host: localhost
|

=== bare CR ends the request line
status 400
| GET / HTTP/1.1\rHost: localhost
|

=== bare LF ends the request line
status 400
| GET / HTTP/1.1\nHost: localhost
|

=== a head with LF only
status 400
| GET / HTTP/1.1\nHost: localhost\n\n\

=== bare LF before the request line
status 400
| \nGET / HTTP/1.1
| Host: localhost
|

=== empty lines before the request line are skipped
status 200
keepalive
body host=localhost uri=/
| \r\n\r\nGET / HTTP/1.1
| Host: localhost
|

=== lower-case method
status 400
| get / HTTP/1.1
| Host: localhost
|

=== mixed-case method
status 400
| Get / HTTP/1.1
| Host: localhost
|

=== unknown but well-formed method
status 501
| FOO / HTTP/1.1
| Host: localhost
|

=== method with a separator
status 400
| G(T / HTTP/1.1
| Host: localhost
|

=== empty method
status 400
| \x20/ HTTP/1.1
| Host: localhost
|

=== two spaces after the method
status 400
| GET  / HTTP/1.1
| Host: localhost
|

=== tab as a separator
status 400
| GET\t/ HTTP/1.1
| Host: localhost
|

=== space after the version
status 400
| GET / HTTP/1.1\x20
| Host: localhost
|

=== HTTP/0.9 simple request (no version)
status 400
| GET /
| Host: localhost
|

=== lower-case protocol name
status 400
| GET / http/1.1
| Host: localhost
|

=== HTTP/1.2 is served as HTTP/1.1 (RFC 9110 2.5)
status 200
keepalive
body host=localhost uri=/
| GET / HTTP/1.2
| Host: localhost
|

=== HTTP/2.0
status 505
| GET / HTTP/2.0
| Host: localhost
|

=== HTTP/0.9 with a version
status 505
| GET / HTTP/0.9
| Host: localhost
|

=== HTTP/3 without a minor version
status 400
| GET / HTTP/3
| Host: localhost
|

=== two-digit minor version
status 400
| GET / HTTP/1.10
| Host: localhost
|

=== two-digit major version
status 400
| GET / HTTP/10.0
| Host: localhost
|

=== the HTTP/2 connection preface
status 505
| PRI * HTTP/2.0
|
| SM
|

=== CONNECT is refused
status 405
| CONNECT example.com:443 HTTP/1.1
| Host: example.com:443
|

=== TRACE is refused
status 405
| TRACE / HTTP/1.1
| Host: localhost
|

=== request line over large_header_buffer
status 414
| GET /{{a*1100}} HTTP/1.1
| Host: localhost
|

# ---- request target ------------------------------------------------------

=== absolute-form: the authority wins over Host
status 200
keepalive
body host=example.com uri=/x
| GET http://example.com/x HTTP/1.1
| Host: localhost
|

=== absolute-form without a path
status 200
keepalive
body host=example.com uri=/
| GET http://example.com HTTP/1.1
| Host: localhost
|

=== absolute-form https, upper case, port
status 200
keepalive
body host=example.com uri=/y
| GET https://EXAMPLE.com:8443/y HTTP/1.1
| Host: localhost
|

=== absolute-form with another scheme
status 400
| GET ftp://example.com/x HTTP/1.1
| Host: localhost
|

=== absolute-form with userinfo
status 400
| GET http://user@example.com/x HTTP/1.1
| Host: localhost
|

=== absolute-form with an empty authority
status 400
| GET http:///x HTTP/1.1
| Host: localhost
|

=== absolute-form with an invalid authority
status 400
| GET http://exa mple.com/x HTTP/1.1
| Host: localhost
|

=== absolute-form still needs Host in HTTP/1.1
status 400
| GET http://example.com/ HTTP/1.1
|

=== asterisk-form with GET
status 400
| GET * HTTP/1.1
| Host: localhost
|

=== authority-form with GET
status 400
| GET example.com:80 HTTP/1.1
| Host: localhost
|

=== origin-form without the leading slash
status 400
| GET a/b HTTP/1.1
| Host: localhost
|

=== fragment in the target
status 400
| GET /a#b HTTP/1.1
| Host: localhost
|

=== fragment in an absolute-form target
status 400
| GET http://example.com/a#b HTTP/1.1
| Host: localhost
|

=== space inside the target
status 400
| GET /a b HTTP/1.1
| Host: localhost
|

=== control byte in the target
status 400
| GET /a\x01b HTTP/1.1
| Host: localhost
|

=== DEL in the target
status 400
| GET /a\x7fb HTTP/1.1
| Host: localhost
|

=== byte above 0x7f in the target
status 400
| GET /a\xffb HTTP/1.1
| Host: localhost
|

=== dot segment above the root
status 400
| GET /../a HTTP/1.1
| Host: localhost
|

=== dot segments climbing above the root later
status 400
| GET /a/../../b HTTP/1.1
| Host: localhost
|

=== encoded dot segment above the root
status 400
| GET /%2e%2E/a HTTP/1.1
| Host: localhost
|

=== encoded NUL
status 400
| GET /a%00b HTTP/1.1
| Host: localhost
|

=== invalid escape
status 400
| GET /a%zzb HTTP/1.1
| Host: localhost
|

=== truncated escape
status 400
| GET /a%2 HTTP/1.1
| Host: localhost
|

=== dot segments inside the root are resolved
status 200
keepalive
body host=localhost uri=/a/c
| GET /a/./b/../c HTTP/1.1
| Host: localhost
|

=== percent-decoding
status 200
keepalive
body host=localhost uri=/Ab
| GET /%41%62 HTTP/1.1
| Host: localhost
|

=== repeated slashes are merged
status 200
keepalive
body host=localhost uri=/a/b
| GET //a///b HTTP/1.1
| Host: localhost
|

=== the query is not normalized
status 200
keepalive
body host=localhost uri=/a
| GET /a?x=/../../%zz HTTP/1.1
| Host: localhost
|

# ---- header fields ---------------------------------------------------------

=== NUL in a field name
status 400
| GET / HTTP/1.1
| Host: localhost
| X-\0a: b
|

=== NUL in a field value
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a: b\0c
|

=== bare CR in a field value
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a: b\rc
|

=== bare LF ends a field line
status 400
| GET / HTTP/1.1
| Host: localhost\nX-a: b
|

=== bare LF ends the head
status 400
| GET / HTTP/1.1
| Host: localhost
| \n\

=== obs-fold with a space
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a: b
|  c
|

=== obs-fold with a tab
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a: b
| \tc
|

=== whitespace before the first field
status 400
| GET / HTTP/1.1
|  Host: localhost
|

=== space before the colon
status 400
| GET / HTTP/1.1
| Host : localhost
|

=== tab before the colon
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a\t: b
|

=== empty field name
status 400
| GET / HTTP/1.1
| Host: localhost
| : b
|

=== field line without a colon
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a b
|

=== separator in a field name
status 400
| GET / HTTP/1.1
| Host: localhost
| X(a): b
|

=== control byte in a field value
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a: b\x01c
|

=== DEL in a field value
status 400
| GET / HTTP/1.1
| Host: localhost
| X-a: b\x7fc
|

=== tab inside a field value is accepted
status 200
keepalive
| GET / HTTP/1.1
| Host: localhost
| X-a: b\tc
|

=== obs-text in a field value is accepted
status 200
keepalive
| GET / HTTP/1.1
| Host: localhost
| X-a: caf\xe9
|

=== field line over large_header_buffer
status 431
| GET / HTTP/1.1
| Host: localhost
| X-a: {{b*1100}}
|

=== head over four large_header_buffers
status 431
| GET / HTTP/1.1
| Host: localhost
| X-a: {{b*900}}
| X-b: {{b*900}}
| X-c: {{b*900}}
| X-d: {{b*900}}
| X-e: {{b*900}}
|

=== more than max_headers field lines
status 431
| GET / HTTP/1.1
| Host: localhost
| {{X-a: b\r\n*20}}
|

# ---- message framing ------------------------------------------------------

=== Content-Length and Transfer-Encoding
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 5
| Transfer-Encoding: chunked
|
| 0
|

=== Transfer-Encoding and Content-Length
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
| Content-Length: 5
|
| 0
|

=== two equal Content-Length fields
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 1
| Content-Length: 1
|
| x\

=== two different Content-Length fields
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 1
| Content-Length: 2
|
| xx\

=== Content-Length as a list
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 1, 1
|
| x\

=== Content-Length with a plus sign
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: +1
|
| x\

=== negative Content-Length
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: -1
|

=== Content-Length with a space inside
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 1 2
|

=== Content-Length in hex
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 0x1
|
| x\

=== Content-Length overflowing 64 bits
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 99999999999999999999999
|

=== Content-Length of 2^63
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length: 9223372036854775808
|

=== empty Content-Length
status 400
| POST / HTTP/1.1
| Host: localhost
| Content-Length:
|

=== Content-Length over client_max_body_size
status 413
| POST /small/ HTTP/1.1
| Host: localhost
| Content-Length: 1025
|

=== Transfer-Encoding gzip alone
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: gzip
|

=== Transfer-Encoding chunked, gzip
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked, gzip
|

=== Transfer-Encoding gzip, chunked
status 501
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: gzip, chunked
|
| 0
|

=== Transfer-Encoding gzip then chunked on two lines
status 501
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: gzip
| Transfer-Encoding: chunked
|
| 0
|

=== Transfer-Encoding chunked twice
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked, chunked
|
| 0
|

=== Transfer-Encoding identity
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: identity
|

=== Transfer-Encoding in HTTP/1.0
status 400
| POST / HTTP/1.0
| Transfer-Encoding: chunked
|
| 0
|

=== Transfer-Encoding is case-insensitive
status 200
keepalive
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: CHUNKED
|
| 0
|

=== invalid chunk size
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| zz
| x
| 0
|

=== chunk size with 0x
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 0x1
| x
| 0
|

=== negative chunk size
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| -1
| x
| 0
|

=== chunk size overflowing 64 bits
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 1ffffffffffffffff
| x
| 0
|

=== chunk data longer than its size
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 1
| xy
| 0
|

=== bare LF after a chunk size
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 1\nx
| 0
|

=== NUL in a chunk extension
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 1;a\0=b
| x
| 0
|

=== bare CR after chunk data
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 1
| x\r0
|

=== bare LF ending the last chunk
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 0\n\r\n\

=== obs-fold in a trailer
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 0
| X-T: a
|  b
|

=== whitespace before the colon of a trailer
status 400
| POST / HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 0
| X-T : a
|

=== chunked body over client_max_body_size
status 413
| POST /small/ HTTP/1.1
| Host: localhost
| Transfer-Encoding: chunked
|
| 400
| {{y*1024}}
| 1
| y
| 0
|

# ---- Host ------------------------------------------------------------------

=== no Host in HTTP/1.1
status 400
| GET / HTTP/1.1
|

=== two Host fields
status 400
| GET / HTTP/1.1
| Host: localhost
| Host: example.com
|

=== two equal Host fields
status 400
| GET / HTTP/1.1
| Host: localhost
| Host: localhost
|

=== empty Host
status 400
| GET / HTTP/1.1
| Host:
|

=== Host with a slash
status 400
| GET / HTTP/1.1
| Host: local/host
|

=== Host with a backslash
status 400
| GET / HTTP/1.1
| Host: local\\host
|

=== Host with an empty label
status 400
| GET / HTTP/1.1
| Host: local..host
|

=== Host with a leading dot
status 400
| GET / HTTP/1.1
| Host: .localhost
|

=== Host with two trailing dots
status 400
| GET / HTTP/1.1
| Host: localhost..
|

=== Host: one trailing dot removed, lower-cased
status 200
keepalive
body host=localhost uri=/
| GET / HTTP/1.1
| Host: LocalHost.
|

=== Host with a port out of range
status 400
| GET / HTTP/1.1
| Host: localhost:99999
|

=== Host with a non-numeric port
status 400
| GET / HTTP/1.1
| Host: localhost:http
|

=== Host: IPv4 with a port
status 200
keepalive
body host=127.0.0.1 uri=/
| GET / HTTP/1.1
| Host: 127.0.0.1:8080
|

=== Host: IPv6 literal with a port
status 200
keepalive
body host=[::1] uri=/
| GET / HTTP/1.1
| Host: [::1]:8080
|

=== Host: invalid IPv6 literal
status 400
| GET / HTTP/1.1
| Host: [::g]
|

=== Host: unclosed IPv6 literal
status 400
| GET / HTTP/1.1
| Host: [::1
|

=== Host: IPv6 literal with a zone
status 400
| GET / HTTP/1.1
| Host: [fe80::1%25eth0]
|

=== Host: IPvFuture literal
status 200
keepalive
body host=[v1.x] uri=/
| GET / HTTP/1.1
| Host: [v1.x]
|

=== Host with a control byte
status 400
| GET / HTTP/1.1
| Host: local\x01host
|

=== Host with a percent escape
status 400
| GET / HTTP/1.1
| Host: local%41host
|

=== Host with userinfo
status 400
| GET / HTTP/1.1
| Host: user@localhost
|

=== Host with a space inside
status 400
| GET / HTTP/1.1
| Host: local host
|

=== HTTP/1.0 without Host: the server's first name, then close
status 200
body host=localhost uri=/
| GET / HTTP/1.0
|

# ---- expectations ------------------------------------------------------------

=== unknown expectation
status 417
| GET / HTTP/1.1
| Host: localhost
| Expect: foo
|

=== 100-continue without a body
status 200
keepalive
| GET / HTTP/1.1
| Host: localhost
| Expect: 100-Continue
|

=== HEAD rejected for its Host: no body follows the head
status 400
head
| HEAD / HTTP/1.1
| Host: local..host
|

=== HEAD refused while scanning: no body follows the head
status 400
head
| HEAD / HTTP/1.1
| Host: localhost
| X-a: b
|  folded
|
