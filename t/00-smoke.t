#!/usr/bin/perl
# The harness itself and the most basic exchange: start, one request, stop.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
$t->write_file('www/index.html', "hello\n");
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    locations = (
      { path = "= /ping"; return = "200 pong"; },
      { path = "/"; root = "%%DIR%%/www"; }
    );
  }
);
EOF

my $r = $t->get('/ping');
is($r->{status}, 200, 'return answers');
is($r->{body}, 'pong', 'return body as given, no newline added');
is($r->{headers}{'content-length'}, 4, 'content-length');
like($r->{headers}{date}, qr/GMT$/, 'date header');
is($r->{headers}{server}, 'portier', 'no version in Server by default');

$r = $t->get('/');
is($r->{status}, 200, 'index file');
is($r->{body}, "hello\n", 'index body');

$t->stop;
is($t->{exit_status}, 0, 'graceful stop exits 0');
ok(!-e $t->pid_file, 'pid file removed at exit');
done_testing;
