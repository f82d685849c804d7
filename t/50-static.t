#!/usr/bin/perl
# mod_static: files from a root. Index files, the directory redirect,
# 403/404/405, media types from etc/mime.types, validators and conditional
# requests (RFC 9110 section 13), ranges (single, suffix, open, clipped,
# unsatisfiable, invalid, multipart, If-Range), HEAD, files of every size
# class through sendfile and through a buffer, and path traversal attempts
# that must never reach a file outside the root.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;
use Digest::MD5 qw(md5_hex);
use POSIX qw(strftime);

PortierTest::need_modules(qw(static));

my $t = PortierTest->new;
my $dir = $t->dir;
my $MTIME = 1_600_000_000; # a fixed past mtime: Last-Modified is known

sub http_date { strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime($_[0])) }

sub put {
	my ($name, $content, $mode) = @_;
	my $path = $t->write_file("www/$name", $content, $mode);
	utime($MTIME, $MTIME, $path);
	return $path;
}

# a pattern where every 4-byte word is its own offset: a misplaced byte
# range shows up as wrong content, not only as a wrong length
sub pattern { my ($n) = @_; substr(pack('N*', 0 .. int($n / 4)), 0, $n) }

my $hundred = join('', map { sprintf('%02d', $_) } 0 .. 49); # 100 bytes
put('f.txt', $hundred);
put('index.html', "root index\n");
put('dir/index.html', "dir index\n");
put('list/default.txt', "second index name\n");
put('list/index.htm', "first index name\n");
put('listdir/sub/x.txt', "x");
put('noindex/x.txt', "x");
put('page.html', '<p>');
put('style.CSS', 'b{}');
put('data.json', '{}');
put('pic.PnG', "\x89PNG");
put('file.unknownext', 'u');
put('README', 'r');
put('empty', '');
put('small16k.bin', pattern(16384));
put('small16k1.bin', pattern(16385));
put('one.bin', pattern(1024 * 1024));
put('twenty.bin', pattern(20 * 1024 * 1024));
put('locked.txt', 'secret-locked', 0000);
put('lockeddir/x.txt', 'x');
chmod 0000, "$dir/www/lockeddir";
put('a b/index.html', 'space dir');
put("$_/index.html", 'odd dir') for 'q?x', 'p%c', 'h#a';
put('typed/x.unknownext', 'typed');
# outside the root: must never be served, except through a symlink that
# the operator put inside the root
$t->write_file('secret.txt', "TOP-SECRET\n");
$t->write_file('outside/linked.txt', "linked from inside\n");
symlink("$dir/outside/linked.txt", "$dir/www/link.txt")
	or die "symlink: $!";
symlink("$dir/outside", "$dir/www/linkdir") or die "symlink: $!";

$t->config(<<'EOF')->run;
mime_types = "%%TOP%%/etc/mime.types";
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    root = "%%DIR%%/www";
    locations = (
      { path = "/list/"; index = [ "missing.html", "index.htm",
                                   "default.txt" ]; },
      { path = "/typed/"; default_type = "application/octet-stream"; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    root = "%%DIR%%/www/";
    sendfile = false;
  }
);
EOF

my $r;

# ---- index, directories, errors -------------------------------------------

$r = $t->get('/');
is($r->{status}, 200, 'index.html by default');
is($r->{body}, "root index\n", 'index body');
is($r->{headers}{'content-type'}, 'text/html', 'index type from its name');
is($t->get('/dir/')->{body}, "dir index\n", 'index of a subdirectory');
is($t->get('/list/')->{body}, "first index name\n",
	'index list: the first existing name');

$r = $t->get('/dir');
is($r->{status}, 301, 'directory without a slash: 301');
is($r->{headers}{location}, '/dir/', 'Location adds the slash');
$r = $t->get('/dir?a=1&b=%20');
is($r->{headers}{location}, '/dir/?a=1&b=%20', 'the query is kept as is');
$r = $t->get('/a%20b');
is($r->{status}, 301, 'directory with an encoded space');
is($r->{headers}{location}, '/a%20b/',
	'the decoded path is re-encoded in Location');
is($t->get('/a%20b/')->{body}, 'space dir', 'and the target works');
for my $c ([ '/q%3fx', '/q%3Fx/' ], [ '/p%25c', '/p%25c/' ],
	[ '/h%23a', '/h%23a/' ]) {
	$r = $t->get("$c->[0]?k=v");
	is($r->{headers}{location}, "$c->[1]?k=v",
		"directory $c->[0]: % ? # of the name encoded again");
	$r = $t->get($r->{headers}{location} // '/none');
	is($r->{body}, 'odd dir', "... and the target works");
}

is($t->get('/noindex/')->{status}, 403, 'directory without index: 403');
is($t->get('/listdir/')->{status}, 403, 'index list, none present: 403');
is($t->get('/missing.txt')->{status}, 404, 'missing file: 404');
is($t->get('/missing/')->{status}, 404, 'missing directory: 404');
is($t->get('/f.txt/x')->{status}, 404, 'a file used as a directory: 404');

SKIP: {
	my ($wpid) = $t->worker_pids;
	my $status = $t->read_file("/proc/$wpid/status") // '';
	my ($euid) = $status =~ /^Uid:\s+\d+\s+(\d+)/m;
	skip 'workers run as root: they read any file', 3
		if !defined $euid || $euid == 0;
	$r = $t->get('/locked.txt');
	is($r->{status}, 403, 'unreadable file: 403');
	unlike($r->{body}, qr/secret-locked/, 'no content of it');
	is($t->get('/lockeddir/x.txt')->{status}, 403,
		'file in an unreadable directory: 403');
}

for my $m ('POST', 'PUT', 'DELETE') {
	$r = $t->request($m, '/f.txt', body => 'x');
	is($r->{status}, 405, "$m: 405");
	is($r->{headers}{allow}, 'GET, HEAD', "$m: Allow lists GET, HEAD");
}

# ---- media types -------------------------------------------------------------

for my $c (
	[ '/page.html',        'text/html',                'html' ],
	[ '/style.CSS',        'text/css',                 'upper-case extension' ],
	[ '/data.json',        'application/json',         'json' ],
	[ '/pic.PnG',          'image/png',                'mixed-case extension' ],
	[ '/f.txt',            'text/plain',               'txt' ],
	[ '/file.unknownext',  'text/plain',               'unknown: default_type' ],
	[ '/README',           'text/plain',               'no extension: default_type' ],
	[ '/typed/x.unknownext', 'application/octet-stream', 'default_type of the location' ],
) {
	$r = $t->get($c->[0]);
	is($r->{headers}{'content-type'}, $c->[1], "type of $c->[0]: $c->[2]");
}

# ---- validators and conditional requests ---------------------------------

$r = $t->get('/f.txt');
is($r->{status}, 200, 'plain GET');
is($r->{body}, $hundred, 'body');
is($r->{headers}{'content-length'}, 100, 'Content-Length');
is($r->{headers}{'last-modified'}, http_date($MTIME), 'Last-Modified = mtime');
is($r->{headers}{'accept-ranges'}, 'bytes', 'Accept-Ranges: bytes');
my $etag = $r->{headers}{etag};
like($etag, qr/^"[^"]+"$/, 'a strong ETag');

sub cond {
	my (@h) = @_;
	return $t->get('/f.txt', headers => \@h);
}

sub is_304 {
	my ($r, $name) = @_;
	subtest $name => sub {
		is($r->{status}, 304, 'status 304');
		is($r->{body}, '', 'no body');
		like($r->{raw}, qr/\r\n\r\n\z/, 'nothing after the head');
		is($r->{headers}{etag}, $etag, 'ETag present');
		is($r->{headers}{'last-modified'}, http_date($MTIME),
			'Last-Modified present');
		ok(!exists $r->{headers}{'content-length'}, 'no Content-Length');
		ok(!exists $r->{headers}{'content-type'}, 'no Content-Type');
	};
}

is_304(cond("If-None-Match: $etag"), 'If-None-Match exact: 304');
is_304(cond(qq{If-None-Match: "nope", $etag}), 'If-None-Match list: 304');
is_304(cond(qq{If-None-Match: "a","b" ,$etag , "c"}),
	'If-None-Match list without spaces: 304');
is_304(cond('If-None-Match: *'), 'If-None-Match *: 304');
is_304(cond("If-None-Match: W/$etag"),
	'If-None-Match weak comparison: W/ matches');
is(cond('If-None-Match: "other"')->{status}, 200, 'If-None-Match other: 200');
is(cond(qq{If-None-Match: "x-$etag"})->{status}, 200,
	'If-None-Match is not a substring match');

is_304(cond('If-Modified-Since: ' . http_date($MTIME)),
	'If-Modified-Since equal: 304');
is_304(cond('If-Modified-Since: ' . http_date($MTIME + 3600)),
	'If-Modified-Since later: 304');
$r = cond('If-Modified-Since: ' . http_date($MTIME - 1));
is($r->{status}, 200, 'If-Modified-Since earlier: 200');
is($r->{body}, $hundred, '... with the body');
is(cond('If-Modified-Since: garbage')->{status}, 200,
	'invalid If-Modified-Since ignored');

# If-None-Match takes precedence over If-Modified-Since
is(cond('If-None-Match: "other"', 'If-Modified-Since: '
	. http_date($MTIME + 3600))->{status}, 200,
	'INM not matching wins over a matching IMS: 200');
is_304(cond("If-None-Match: $etag", 'If-Modified-Since: '
	. http_date($MTIME - 3600)), 'INM matching wins over an old IMS: 304');

is(cond('If-Match: "other"')->{status}, 412, 'If-Match mismatch: 412');
is(cond("If-Match: W/$etag")->{status}, 412,
	'If-Match uses the strong comparison: W/ never matches');
is(cond("If-Match: $etag")->{status}, 200, 'If-Match matching: 200');
is(cond(qq{If-Match: "x", $etag})->{status}, 200, 'If-Match list: 200');
is(cond('If-Match: *')->{status}, 200, 'If-Match *: 200');
is(cond('If-Unmodified-Since: ' . http_date($MTIME - 1))->{status}, 412,
	'If-Unmodified-Since earlier than mtime: 412');
is(cond('If-Unmodified-Since: ' . http_date($MTIME))->{status}, 200,
	'If-Unmodified-Since equal: 200');
is(cond("If-Match: $etag", 'If-Unmodified-Since: '
	. http_date($MTIME - 1))->{status}, 200,
	'If-Match present: If-Unmodified-Since is not evaluated');
is(cond('If-Match: "other"', "If-None-Match: $etag")->{status}, 412,
	'If-Match is evaluated before If-None-Match');
is($t->head('/f.txt', headers => ["If-None-Match: $etag"])->{status}, 304,
	'HEAD with a matching If-None-Match: 304');

# the validator changes with the file
put('changing.txt', 'aaaa');
my $e1 = $t->get('/changing.txt')->{headers}{etag};
my $p = put('changing.txt', 'bbbbb');
my $e2 = $t->get('/changing.txt')->{headers}{etag};
isnt($e2, $e1, 'ETag changes with the size');
utime($MTIME + 10, $MTIME + 10, $p);
isnt($t->get('/changing.txt')->{headers}{etag}, $e2,
	'ETag changes with the mtime');

# ---- ranges ------------------------------------------------------------------

sub range {
	my ($spec, @h) = @_;
	return $t->get('/f.txt', headers => [ "Range: $spec", @h ]);
}

sub is_206 {
	my ($r, $from, $to, $name) = @_;
	subtest $name => sub {
		is($r->{status}, 206, 'status 206');
		is($r->{headers}{'content-range'}, "bytes $from-$to/100",
			'Content-Range');
		is($r->{headers}{'content-length'}, $to - $from + 1,
			'Content-Length');
		is($r->{body}, substr($hundred, $from, $to - $from + 1), 'bytes');
	};
}

is_206(range('bytes=0-9'), 0, 9, 'bytes=0-9');
is_206(range('bytes=-10'), 90, 99, 'bytes=-10: the last 10');
is_206(range('bytes=10-'), 10, 99, 'bytes=10-: to the end');
is_206(range('bytes=90-200'), 90, 99, 'beyond the end: clipped');
is_206(range('bytes=-200'), 0, 99, 'suffix longer than the file: all');
is_206(range('bytes=99-99'), 99, 99, 'the last byte');
is_206(range('BYTES=5-6'), 5, 6, 'unit without regard to case');
is_206(range('bytes=1000-, 3-4'), 3, 4,
	'one satisfiable range among others: single part');

for my $spec ('bytes=1000-', 'bytes=100-100', 'bytes=-0', 'bytes=1000-, -0') {
	$r = range($spec);
	is($r->{status}, 416, "$spec: 416");
	is($r->{headers}{'content-range'}, 'bytes */100',
		"$spec: Content-Range bytes */SIZE");
}

for my $spec ('bytes=abc', 'bits=0-1', 'bytes=5-3', 'bytes=0-1;x',
	'bytes 0-9', 'bytes=', 'bytes=--1', 'bytes=1-2-3') {
	$r = range($spec);
	is($r->{status}, 200, "invalid '$spec' ignored: 200");
	is($r->{body}, $hundred, "invalid '$spec': the whole file");
}

# ranges adding up to more than the file would multiply it: ignored
for my $spec ('bytes=0-99,0-99', 'bytes=0-,0-,0-', 'bytes=-60,0-50') {
	$r = range($spec);
	is($r->{status}, 200, "'$spec' adds up to more than the file: 200");
	is($r->{body}, $hundred, "'$spec': the whole file once");
}
# at most 16 ranges
my @sixteen = map { "$_-$_" } 0 .. 15;
is(range('bytes=' . join(',', @sixteen))->{status}, 206, '16 ranges: 206');
is(range('bytes=' . join(',', @sixteen, '16-16'))->{status}, 200,
	'17 ranges: ignored, 200');

# several ranges: multipart/byteranges
sub multipart {
	my ($r) = @_;
	my ($b) = ($r->{headers}{'content-type'} // '')
		=~ m{^multipart/byteranges; boundary=(\S+)$} or return;
	my @parts;
	my $body = $r->{body};
	return unless $body =~ s/\r\n--\Q$b\E--\r\n\z//;
	for my $part (split /\r\n--\Q$b\E\r\n/, $body, -1) {
		next if $part eq '';
		my ($head, $data) = split /\r\n\r\n/, $part, 2;
		my %h;
		for (split /\r\n/, $head) {
			$h{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/;
		}
		push @parts, [ $h{'content-type'}, $h{'content-range'}, $data ];
	}
	return \@parts;
}

$r = range('bytes=0-4, 10-14,-5');
is($r->{status}, 206, 'several ranges: 206');
is($r->{headers}{'content-length'}, length $r->{body},
	'multipart Content-Length exact');
my $parts = multipart($r);
is(scalar @{ $parts // [] }, 3, 'three parts');
is_deeply($parts, [
	[ 'text/plain', 'bytes 0-4/100', substr($hundred, 0, 5) ],
	[ 'text/plain', 'bytes 10-14/100', substr($hundred, 10, 5) ],
	[ 'text/plain', 'bytes 95-99/100', substr($hundred, 95, 5) ],
], 'parts: type, range and bytes');

$r = $t->get('/one.bin', headers => [ 'Range: bytes=0-99999,500000-600000' ]);
$parts = multipart($r);
my $one = pattern(1024 * 1024);
is_deeply([ map { [ $_->[1], md5_hex($_->[2]) ] } @{ $parts // [] } ], [
	[ 'bytes 0-99999/1048576', md5_hex(substr($one, 0, 100000)) ],
	[ 'bytes 500000-600000/1048576', md5_hex(substr($one, 500000, 100001)) ],
], 'multipart of a large file (sendfile)');
$r = $t->get('/one.bin', headers => [ 'Range: bytes=0-99999,500000-600000' ],
	port => $t->port(1));
is_deeply([ map { [ $_->[1], md5_hex($_->[2]) ] } @{ multipart($r) // [] } ], [
	[ 'bytes 0-99999/1048576', md5_hex(substr($one, 0, 100000)) ],
	[ 'bytes 500000-600000/1048576', md5_hex(substr($one, 500000, 100001)) ],
], 'multipart of a large file (sendfile = false)');

# If-Range
is_206(range('bytes=0-9', "If-Range: $etag"), 0, 9,
	'If-Range with the ETag: 206');
$r = range('bytes=0-9', 'If-Range: "other"');
is($r->{status}, 200, 'If-Range with another ETag: 200');
is($r->{body}, $hundred, '... the whole file');
is_206(range('bytes=0-9', 'If-Range: ' . http_date($MTIME)), 0, 9,
	'If-Range with the Last-Modified date: 206');
is(range('bytes=0-9', 'If-Range: ' . http_date($MTIME + 1))->{status}, 200,
	'If-Range with another date: 200');
is(range('bytes=0-9', "If-Range: W/$etag")->{status}, 200,
	'If-Range with a weak ETag: 200');
is(range('bytes=1000-', 'If-Range: "other"')->{status}, 200,
	'If-Range not matching: an unsatisfiable range is ignored too');

# ---- HEAD ---------------------------------------------------------------

$r = $t->head('/f.txt');
is($r->{status}, 200, 'HEAD: 200');
is($r->{headers}{'content-length'}, 100, 'HEAD: Content-Length of the file');
is($r->{body}, '', 'HEAD: no body');
$r = $t->head('/twenty.bin');
is($r->{headers}{'content-length'}, 20 * 1024 * 1024,
	'HEAD of a large file: Content-Length');
is($r->{body}, '', 'HEAD of a large file: no body');
$r = $t->head('/f.txt', headers => [ 'Range: bytes=0-9' ]);
is($r->{status}, 206, 'HEAD with Range: 206');
is($r->{headers}{'content-length'}, 10, 'HEAD with Range: Content-Length');
is($r->{body}, '', 'HEAD with Range: no body');
$r = $t->head('/f.txt', headers => [ 'Range: bytes=0-1,5-6' ]);
like($r->{headers}{'content-type'}, qr{^multipart/byteranges},
	'HEAD with ranges: multipart type');
is($r->{body}, '', 'HEAD with ranges: no body');

# ---- sizes ---------------------------------------------------------------

for my $port ($t->port(0), $t->port(1)) {
	my $how = $port == $t->port(0) ? 'sendfile' : 'sendfile = false';
	for my $c (
		[ '/empty',         '' ],
		[ '/small16k.bin',  pattern(16384) ],
		[ '/small16k1.bin', pattern(16385) ],
		[ '/one.bin',       $one ],
		[ '/twenty.bin',    pattern(20 * 1024 * 1024) ],
	) {
		$r = $t->get($c->[0], port => $port, timeout => 60);
		is($r->{status}, 200, "$c->[0] ($how): 200");
		is($r->{headers}{'content-length'}, length $c->[1],
			"$c->[0] ($how): Content-Length");
		is(md5_hex($r->{body}), md5_hex($c->[1]),
			"$c->[0] ($how): byte-exact");
	}
	$r = $t->get('/twenty.bin', port => $port, timeout => 60,
		headers => [ 'Range: bytes=10000000-' ]);
	is(md5_hex($r->{body}), md5_hex(substr(pattern(20 * 1024 * 1024),
		10000000)), "a range of the large file ($how): byte-exact");
}

$r = $t->get('/empty', headers => [ 'Range: bytes=0-' ]);
is($r->{status}, 416, 'a range of an empty file: 416');
is($r->{headers}{'content-range'}, 'bytes */0', '... bytes */0');

# several files on one connection, small, large, small
my $req = join '', map { "GET $_ HTTP/1.1\r\nHost: x\r\n\r\n" }
	'/f.txt', '/one.bin', '/small16k1.bin';
my @rs = $t->pipeline($req, 3);
is(scalar @rs, 3, 'three responses on one connection');
is(md5_hex($rs[0]{body} // ''), md5_hex($hundred), 'pipelined small file');
is(md5_hex($rs[1]{body} // ''), md5_hex($one), 'pipelined large file');
is(md5_hex($rs[2]{body} // ''), md5_hex(pattern(16385)),
	'pipelined file after a sendfile');

# ---- path traversal ------------------------------------------------------

for my $path (
	'/../secret.txt',
	'/../etc/passwd',
	'/../../../../../../etc/passwd',
	'/%2e%2e/secret.txt',
	'/%2E%2E/secret.txt',
	'/..%2fsecret.txt',
	'/..%2Fsecret.txt',
	'/%2e%2e%2f..',
	'/%2e%2e%2fsecret.txt',
	'/.%2e/secret.txt',
	'/dir/../../secret.txt',
	'/dir/%2e%2e/%2e%2e/secret.txt',
	'//../secret.txt',
	'/./../secret.txt',
	'/..%5csecret.txt',
	'/%5c..%5csecret.txt',
	'/%2e%2e%5csecret.txt',
	'/f.txt%00.png',
	'/%00/../secret.txt',
	'/%252e%252e/secret.txt',
	'/%252e%252e%252fsecret.txt',
	'/%c0%ae%c0%ae/secret.txt',
	'/..',
	'/dir/..%2f..%2fsecret.txt',
	'http://x/../secret.txt',
	'http://x/%2e%2e/secret.txt',
) {
	$r = $t->get($path);
	ok($r->{status} == 400 || $r->{status} == 404,
		"traversal $path: 400 or 404") or diag("status $r->{status}");
	unlike($r->{raw}, qr/TOP-SECRET|root:/, "traversal $path: no content");
}
# a raw backslash and a raw NUL never get past the parser
for my $path ("/..\\secret.txt", "/f.txt\0") {
	my $raw = $t->raw("GET $path HTTP/1.1\r\nHost: x\r\nConnection: close"
		. "\r\n\r\n");
	like($raw, qr{^HTTP/1\.1 400 }, 'raw ' . ($path =~ /\0/ ? 'NUL' : '\\')
		. ': 400');
}

# symbolic links inside the root are followed, as nginx does by default
$r = $t->get('/link.txt');
is($r->{status}, 200, 'symlink to a file outside the root: followed');
is($r->{body}, "linked from inside\n", '... its content (operator\'s choice)');
is($t->get('/linkdir/linked.txt')->{status}, 200,
	'symlinked directory: followed');
# the kernel would resolve www/linkdir/.. to the parent of outside/, the
# directory holding secret.txt; the path is normalized lexically first
$r = $t->get('/linkdir/../secret.txt');
is($r->{status}, 404, '.. after a symlinked directory: lexical, 404');
unlike($r->{raw}, qr/TOP-SECRET/, '... not the file beside the root');

$t->stop;
chmod 0755, "$dir/www/lockeddir"; # so that the temporary tree can go

# ---- the media type table ----------------------------------------------

# without mime_types and without a mime.types beside the configuration:
# the built-in table
my $m = PortierTest->new;
$m->write_file('www/a.css', 'c');
$m->write_file('www/b.FOO', 'f');
my $mconf = <<'EOF';
servers = ( { listen = "127.0.0.1:%%PORT_0%%"; root = "%%DIR%%/www";
              default_type = "application/octet-stream"; } );
EOF
$m->config($mconf)->run;
is($m->get('/a.css')->{headers}{'content-type'}, 'text/css',
	'no mime.types: built-in table');
is($m->get('/b.FOO')->{headers}{'content-type'}, 'application/octet-stream',
	'no mime.types: default_type for an unknown extension');
$m->stop;

# a mime.types beside the configuration is read by default
$m->write_file('mime.types', "# comment\ntext/x-foo\tfoo  bar # tail\n"
	. "text/x-other foo\napplication/x-semi baz;\n");
$m->config($mconf)->run;
is($m->get('/b.FOO')->{headers}{'content-type'}, 'text/x-foo',
	'mime.types beside the config, case-insensitive extension');
is($m->get('/a.css')->{headers}{'content-type'}, 'application/octet-stream',
	'the file replaces the built-in table');
$m->stop;

$m->config(<<'EOF');
mime_types = "%%DIR%%/no-such-file";
servers = ( { listen = "127.0.0.1:%%PORT_0%%"; root = "%%DIR%%/www"; } );
EOF
my ($code, $out, $err) = $m->run_cmd('-t', '-c', $m->conf_path);
isnt($code, 0, 'a mime_types file that cannot be read is an error');
like($out . $err, qr/mime_types/, '... naming the setting');

done_testing;
