#!/usr/bin/perl
# worker_connections (portier.conf(5)): when all are in use, the oldest
# idle keep-alive connection is closed to make room; if none is idle, the
# worker stops accepting until a connection closes, and the waiting client
# is then served.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use PortierTest;
use PortierHTTP;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my $max = 8;
my $t = PortierTest->new;
$t->config(<<"EOF")->run;
worker_connections = $max;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    locations = ( { path = "/"; return = "200 \$uri"; } );
  }
);
EOF

sub get {
	my ($s, $path) = @_;
	write_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n");
	my $r = read_responses($s, 1);
	return $r->{responses}[0]{body} // '';
}

# $max idle keep-alive connections, oldest first
my @c = map { connect_raw($t) } 1 .. $max;
my $served = grep { get($c[$_], "/c$_") eq "/c$_" } 0 .. $#c;
is($served, $max, "$max keep-alive connections served");

# one more: the oldest idle one makes room
my $extra = connect_raw($t);
is(get($extra, '/extra'), '/extra', 'one connection over the limit is '
	. 'served');
my $w = wait_eof($c[0], 5);
ok($w->{eof}, 'the oldest idle connection was closed for it');
is(get($c[1], '/c1again'), '/c1again', 'the others are kept');
is(get($c[-1], '/lastagain'), '/lastagain', '... all of them');
shift @c;
push @c, $extra;

# none idle: each holds a partial head
write_all($_, "GET /busy HTTP/1.1\r\n") for @c;
my $waiting = connect_raw($t); # the kernel completes it; nobody accepts
write_all($waiting, "GET /waiting HTTP/1.1\r\nHost: localhost\r\n\r\n");
ok(!IO::Select->new($waiting)->can_read(1),
	'no idle connection: a new one waits, unanswered');
close(shift @c);
my $r = read_responses($waiting, 1, timeout => 5);
is($r->{responses}[0]{body}, '/waiting',
	'once a connection closes, the waiting one is served');

# the busy ones are still served when their heads complete
write_all($_, "Host: localhost\r\n\r\n") for @c;
my $ok = grep { (read_responses($_, 1)->{responses}[0]{body} // '')
	eq '/busy' } @c;
is($ok, scalar @c, 'the busy connections finish their requests');

# none idle again; this time the busy ones go idle instead of closing
push @c, $waiting;
is(scalar @c, $max, "$max connections open");
write_all($_, "GET /busy HTTP/1.1\r\n") for @c;
my $late = connect_raw($t);
write_all($late, "GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n");
ok(!IO::Select->new($late)->can_read(1), 'none idle: a new one waits');
write_all($_, "Host: localhost\r\n\r\n") for @c;
$ok = grep { (read_responses($_, 1)->{responses}[0]{body} // '')
	eq '/busy' } @c;
is($ok, scalar @c, 'the busy connections finish and go idle');
$r = read_responses($late, 1, timeout => 5);
is($r->{responses}[0]{body}, '/late',
	'a connection going idle lets the waiting one in');
ok(wait_eof($c[0], 5)->{eof}, '... in place of the oldest idle one');

done_testing;
