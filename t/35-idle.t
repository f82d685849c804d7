#!/usr/bin/perl
# Memory of idle keep-alive connections, measured (DESIGN.md section 3:
# "buffers released while idle"). Many connections each make one request
# and stay open, idle; the worker's resident memory (VmRSS) is read before
# and after, and the growth per connection must stay far below what one
# header buffer (4 KiB) would cost. As a control, as many connections
# that hold a partial head (and so a header buffer) are measured the same
# way: the method must see the buffer there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my ($soft, $hard) = nofile_limit();
# n idle connections, then n / 2 more for the control
my $n = 2000;
$n = int(($soft - 100) / 1.5) if ($soft - 100) / 1.5 < $n;
plan skip_all => "open-files limit $soft is too low" if $n < 300;
my $nofile = $n * 2 + 200;
$nofile = $hard if $nofile > $hard;

my $t = PortierTest->new;
$t->config(<<"EOF")->run;
worker_connections = @{[ $n * 2 + 100 ]};
worker_rlimit_nofile = $nofile;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    locations = ( { path = "/"; return = "200 ok"; } );
  }
);
EOF
my ($worker) = $t->worker_pids;
ok($worker, 'a worker runs');

my $req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

# Open $count connections in batches, send $bytes on each, and when
# $answered read one response; returns the open sockets.
sub open_conns {
	my ($count, $bytes, $answered) = @_;
	my @all;
	while (@all < $count) {
		my $k = $count - @all < 100 ? $count - @all : 100;
		my @batch = map { connect_raw($t) } 1 .. $k;
		write_all($_, $bytes) for @batch;
		if ($answered) {
			for my $s (@batch) {
				my $r = read_responses($s, 1);
				die 'no response' unless
					($r->{responses}[0]{status} // 0) == 200;
			}
		}
		push @all, @batch;
	}
	return @all;
}

# Resident memory once it has settled: the worker may still be handling
# the last batch, so wait until two reads agree.
sub settled_rss {
	my $last = -1;
	my $rss;
	PortierTest::wait_for(sub {
		$rss = rss_kib($worker);
		my $same = $rss == $last;
		$last = $rss;
		return $same;
	}, 5);
	return $rss;
}

# Warm up: the allocator and the block cache reach their steady state.
{
	my @warm = open_conns(200, $req, 1);
	close $_ for @warm;
}

my $before = settled_rss();
my @idle = open_conns($n, $req, 1);
my $after = settled_rss();
my $per_idle = ($after - $before) * 1024 / $n;
diag(sprintf('idle keep-alive: %d connections, VmRSS %d -> %d KiB: '
	. '%.0f bytes per connection', $n, $before, $after, $per_idle));
cmp_ok($per_idle, '<', 2048, 'an idle keep-alive connection costs less '
	. 'than 2 KiB of worker memory');

# they are all still open and usable
my $alive = 0;
for (my $i = 0; $i < @idle; $i += 100) {
	write_all($idle[$i], $req);
	my $r = read_responses($idle[$i], 1);
	$alive++ if ($r->{responses}[0]{status} // 0) == 200;
}
is($alive, int((@idle + 99) / 100), 'the idle connections still serve');

# Control: connections holding a partial head keep their header buffer.
my $m = int($n / 2);
my $before_p = settled_rss();
my @partial = open_conns($m, "GET / HTTP/1.1\r\nHost: loc", 0);
my $after_p = settled_rss();
my $per_partial = ($after_p - $before_p) * 1024 / $m;
diag(sprintf('partial heads: %d connections, VmRSS %d -> %d KiB: '
	. '%.0f bytes per connection', $m, $before_p, $after_p, $per_partial));
cmp_ok($per_partial, '>', 3072, 'control: a connection with a partial head '
	. 'is seen holding its header buffer');

close $_ for @idle, @partial;
done_testing;
