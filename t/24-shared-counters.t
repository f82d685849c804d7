#!/usr/bin/perl
# The shared memory zone "core" as seen from outside, through the
# variables that read its counters: every worker sees the same numbers,
# the zone and its contents survive a reload, and a worker that dies
# takes its connections out of the count but not its totals.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(rewrite));

sub config {
	my ($workers, $tag) = @_;
	return <<"EOF";
worker_processes = $workers;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    keepalive_timeout = "60s";
    locations = (
      { path = "= /s"; return = "200 $tag a=\$connections_active w=\$connections_waiting acc=\$connections_accepted req=\$requests_total"; }
    );
  }
);
EOF
}

sub counters {
	my ($t) = @_;
	my $r = $t->get('/s');
	my %c = ($r->{body} // '') =~ /(\w+)=(\d+)/g;
	($c{tag}) = ($r->{body} // '') =~ /^(\w+) /;
	return \%c;
}

# ---- two workers, one count ------------------------------------------------
my $t = PortierTest->new;
$t->config(config(2, 'one'))->run(workers => 2);

my $first = counters($t);
ok($first->{req} >= 1, 'requests_total counts');
my $prev = $first->{req};
my $steps_ok = 1;
for (1 .. 20) {
	my $c = counters($t);
	$steps_ok = 0 unless $c->{req} == $prev + 1;
	$prev = $c->{req};
}
ok($steps_ok, 'requests_total grows by one per request, whichever '
	. 'worker answers');
is(counters($t)->{acc}, $prev + 2, 'connections_accepted: one per connection');

# idle keep-alive connections are counted as active and waiting
my @idle;
for (1 .. 5) {
	my $s = $t->connect_to or die;
	syswrite($s, "GET /s HTTP/1.1\r\nHost: x\r\n\r\n");
	PortierTest::read_until($s, sub { PortierTest::response_length($_[0]) });
	push @idle, $s;
}
ok(PortierTest::wait_for(sub { counters($t)->{w} == 5 }),
	'connections_waiting: the five idle connections');
# the previous probe's connection may still be closing in the other
# worker (lingering close): it leaves the count once its close is seen
my $c;
ok(PortierTest::wait_for(sub { $c = counters($t); $c->{a} == 6 }),
	'connections_active: five idle and this one')
	or diag("active: $c->{a}");

# ---- a reload keeps the zone and its contents -------------------------------
my $before = counters($t)->{req};
$t->config(config(2, 'two'));
$t->signal('HUP');
ok(PortierTest::wait_for(sub { counters($t)->{tag} eq 'two' }),
	'reloaded');
$c = counters($t);
cmp_ok($c->{req}, '>', $before, 'requests_total goes on after a reload');
# the retiring workers close their idle connections at once
ok(PortierTest::wait_for(sub { my $x = counters($t); $x->{w} == 0 && $x->{a} == 1 }),
	'idle connections closed by the old generation leave the count');
is(PortierTest::next_event($idle[0], 3), 'eof', 'they were closed');
close $_ for @idle;
@idle = ();
$t->stop;

# ---- a killed worker ------------------------------------------------------------
$t = PortierTest->new;
$t->config(config(1, 'k'))->run(workers => 1);
for (1 .. 4) {
	my $s = $t->connect_to or die;
	syswrite($s, "GET /s HTTP/1.1\r\nHost: x\r\n\r\n");
	PortierTest::read_until($s, sub { PortierTest::response_length($_[0]) });
	push @idle, $s;
}
$c = counters($t);
is($c->{w}, 4, 'four idle connections before the kill');
my $total = $c->{req};
my ($worker) = $t->worker_pids;
kill 'KILL', $worker;
ok(PortierTest::wait_for(sub {
	my @w = $t->worker_pids;
	@w == 1 && $w[0] != $worker && PortierTest::can_connect($t->port(0));
}), 'a new worker replaced the killed one');
$c = counters($t);
is($c->{a}, 1, 'the dead worker\'s connections are not counted');
is($c->{w}, 0, 'nor its idle ones');
is($c->{req}, $total + 1, 'its requests still are');
close $_ for @idle;
$t->stop;
ok(!$t->log_has(qr/no free counter slot/), 'slots are reused');

done_testing;
