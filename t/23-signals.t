#!/usr/bin/perl
# Signals that race each other or meet a process in an unusual state:
# HUP and QUIT back to back, TERM with a worker that does not answer,
# a retiring worker that dies, reloads in quick succession under load,
# WINCH without an upgrade (then HUP).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierLoad;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time);
use Test::More;

PortierTest::need_modules(qw(rewrite static));

sub conf {
	my ($text, $workers) = @_;
	$workers //= 1;
	return <<"EOF";
worker_processes = $workers;
servers = ( { listen = "127.0.0.1:%%PORT_0%%";
  locations = ( { path = "/"; return = "200 $text"; },
                { path = "/huge"; root = "%%DIR%%/www"; } ); } );
EOF
}

sub body_of {
	my ($t) = @_;
	my $r = $t->get('/', timeout => 3) // return '';
	return $r->{body} // '';
}

my $huge = PortierTest::test_data(PortierTest::inflight_size());

# ---- HUP and QUIT back to back ------------------------------------------------

{
	my $t = PortierTest->new;
	$t->config(conf('a', 2))->run(workers => 2);
	my $m = $t->master_pid;
	my @w = $t->wait_workers(2);
	$t->config(conf('b', 2));
	kill 'HUP', $m;
	kill 'QUIT', $m;
	ok(PortierTest::wait_for(sub { waitpid($m, WNOHANG) == $m }),
		'HUP then QUIT: the master exits');
	is($? >> 8, 0, 'exit status 0');
	$t->{pid} = undef unless PortierTest::alive($m);
	ok(!grep({ PortierTest::alive($_) } @w), 'the old workers are gone');
	my @started = $t->read_file('error.log') =~ /started worker \d \(pid (\d+)/g;
	ok(!grep({ PortierTest::alive($_) } @started),
		'so are the workers the reload started (' . scalar(@started) . ' in all)');
	ok(!-e $t->pid_file, 'pid file removed');
}

# ---- TERM with a worker that does not answer ------------------------------

{
	my $t = PortierTest->new;
	$t->config(conf('a'))->run;
	my $m = $t->master_pid;
	my ($w) = $t->wait_workers(1);
	kill 'STOP', $w;
	my $t0 = time();
	$t->signal('TERM');
	ok(PortierTest::wait_for(sub { waitpid($m, WNOHANG) == $m }, 10),
		'TERM with a stopped worker: the master exits');
	my $took = time() - $t0;
	$t->{pid} = undef unless PortierTest::alive($m);
	ok($took >= 4.5, sprintf('after the 5 s it gives workers (%.1f s)', $took));
	ok(!PortierTest::alive($w), 'the worker was killed');
	ok($t->log_has(qr/killing 1 workers that did not exit/), 'logged');
	kill 'CONT', $w;
}

# ---- the master killed: its workers do not stay behind ----------------------

{
	my $t = PortierTest->new;
	$t->write_file('www/huge', $huge);
	$t->config(conf('a', 2))->run(workers => 2);
	my $m = $t->master_pid;
	my @w = $t->wait_workers(2);
	my $dl = $t->slow_get('/huge');
	my $buf = '';
	PortierTest::slow_read($dl, \$buf, 256 * 1024);
	kill 'KILL', $m;
	ok(PortierTest::wait_exit($m), 'the master is killed');
	$t->{pid} = undef unless PortierTest::alive($m);
	ok(PortierTest::wait_for(sub { !grep { PortierTest::cmdline($_) eq 'portier: worker process' } @w }),
		'its workers shut down');
	PortierTest::slow_read($dl, \$buf, length($huge) + 1024, 0);
	my ($head, $body) = PortierTest::split_response($buf);
	ok($body eq $huge, 'gracefully: the download in flight completes');
	ok(!grep({ !PortierTest::wait_exit($_) } @w), 'and they exit');
}

# ---- a retiring worker that dies is not replaced --------------------------------

{
	my $t = PortierTest->new;
	$t->write_file('www/huge', $huge);
	$t->config(conf('a'))->run;
	my ($old) = $t->wait_workers(1);
	# a download keeps the old worker busy after the reload
	my $dl = $t->slow_get('/huge');
	my $buf = '';
	PortierTest::slow_read($dl, \$buf, 256 * 1024);
	$t->config(conf('b'));
	$t->signal('HUP');
	ok(PortierTest::wait_for(sub { body_of($t) eq 'b' }), 'reloaded');
	ok(PortierTest::alive($old), 'the old worker is still busy');
	my ($new) = $t->wait_workers(1);
	kill 'KILL', $old;
	ok(PortierTest::wait_exit($old), 'the retiring worker is killed');
	ok($t->wait_log(qr/worker 0 \(pid $old\) exited on signal 9/), 'its death is logged');
	# a respawn would come within the 1 s backoff of a young death
	ok(!PortierTest::wait_for(sub { grep { $_ != $new } $t->worker_pids }, 1.5),
		'and it is not replaced');
	is_deeply([$t->wait_workers(1)], [$new], 'the new worker serves alone');
	is(body_of($t), 'b', 'with the new config');
	close $dl;
	$t->stop;
}

# ---- reloads in quick succession under load --------------------------------

{
	my $t = PortierTest->new;
	$t->config(conf('g1', 2))->run(workers => 2);
	my $load = PortierLoad->start(dir => $t->dir, port => $t->port(0),
		body => qr/^g\d+$/, keepalive => 2, close => 2);
	ok($load->wait_requests(3), 'load running');
	my %seen;
	$seen{$_} = 1 for $t->wait_workers(2);
	# each reload only waits for the master to have started the next
	# generation: several generations of workers retire at once
	for my $g (2 .. 6) {
		$t->config(conf("g$g", 2));
		$t->signal('HUP');
		ok($t->wait_log(qr/configuration generation $g is live/),
			"rapid reload $g");
		$seen{$_} = 1 for $t->worker_pids;
	}
	ok(PortierTest::wait_for(sub { body_of($t) eq 'g6' }), 'the last config serves');
	my @last = $t->wait_workers(2);
	is(scalar @last, 2, 'two workers in the end');
	delete @seen{@last};
	ok(!grep({ !PortierTest::wait_exit($_) } keys %seen),
		'every earlier worker exited (' . scalar(keys %seen) . ')');
	my $log = $t->read_file('error.log');
	is(scalar(grep { $log =~ /started worker \d \(pid $_, generation 6\)/ } @last), 2,
		'the survivors are of the last generation');
	ok($load->wait_requests(20), 'load still running');
	my $r = $load->stop;
	is($r->{nfail}, 0, "rapid reloads under load: no failed request ($r->{ok} ok, "
		. "$r->{retries} idle keep-alive retries)")
		or diag(join "\n", @{ $r->{failures} });
	$t->stop;
}

# ---- WINCH without an upgrade, then HUP -----------------------------------

{
	my $t = PortierTest->new;
	$t->config(conf('a'))->run;
	my $m = $t->master_pid;
	my ($w) = $t->wait_workers(1);
	$t->signal('WINCH');
	ok(PortierTest::wait_exit($w), 'WINCH: the worker exits');
	ok(PortierTest::alive($m), 'WINCH: the master stays');
	ok(!PortierTest::wait_for(sub { $t->worker_pids }, 1.5), 'WINCH: no worker is started');
	# the master keeps the socket: a client waits in the backlog
	my $s = $t->connect_to;
	ok($s, 'WINCH: a connection is not refused');
	syswrite($s, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	$t->config(conf('b'));
	$t->signal('HUP');
	ok(scalar $t->wait_workers(1), 'HUP: a worker again');
	my $r = PortierTest::parse_response(PortierTest::read_until($s, undef, 5));
	is($r && $r->{body}, 'b', 'HUP: the waiting client is served, with the new config');
	$t->stop;
}

done_testing;
