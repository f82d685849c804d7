package PortierTest;

# The integration test harness, in the manner of nginx-tests' Test::Nginx:
# a test writes a config (with %%PORT_n%% and %%DIR%% placeholders), starts
# a real portier on loopback, talks to it over raw sockets as clients do,
# and asserts on raw responses. Waiting is always polling with a bound,
# never a fixed sleep.
#
#   my $t = PortierTest->new;
#   $t->write_file('www/a.txt', "hello");
#   $t->config(<<'EOF')->run;
#   daemon = false;
#   servers = ( { listen = "127.0.0.1:%%PORT_0%%";
#                 locations = ( { path = "/"; root = "%%DIR%%/www"; } ); } );
#   EOF
#   my $r = $t->get('/a.txt');      # { status, headers, body, raw }
#
# The binary is $ENV{PORTIER_BIN} (make check sets it) or src/portier.

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EAGAIN EINTR EINPROGRESS);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use Socket ();
use Scalar::Util qw(weaken);
use Test::More;
use Time::HiRes qw(time sleep);

# Every harness of this test script, to check their logs at the end.
our @INSTANCES;
our $MAIN_PID = $$;

our $TOP = abs_path(dirname(__FILE__) . '/../..');

sub binary {
	return $ENV{PORTIER_BIN} // "$TOP/src/portier";
}

# The modules compiled into the binary, from "portier -V".
my %MODULES;
sub modules {
	unless (%MODULES) {
		my $bin = binary();
		my ($line) = `"$bin" -V 2>&1` =~ /^modules: (.*)$/m;
		%MODULES = map { $_ => 1 } split ' ', $line // '';
	}
	return \%MODULES;
}

# Skip the whole test unless every named module is compiled in (a build
# with ./configure --without-mod-NAME), as nginx-tests' has().
sub need_modules {
	my @missing = grep { !modules()->{$_} } @_;
	plan(skip_all => "not compiled in: @missing") if @missing;
}

sub new {
	my ($class, %opt) = @_;
	my $self = bless {
		dir => tempdir('portier-test-XXXXXX', TMPDIR => 1,
			CLEANUP => !$ENV{TEST_KEEP}),
		ports => [],
		pid => undef,
		owner => $$,
		%opt,
	}, $class;
	# workers run as nobody when the tests run as root: let them read
	chmod 0755, $self->{dir};
	diag("test dir: $self->{dir}") if $ENV{TEST_KEEP};
	push @INSTANCES, $self;
	weaken($INSTANCES[-1]);
	return $self;
}

# What no server process may ever print: a sanitizer's report, or a
# crash seen by the master.
my $CRASH_RE = qr/ERROR:\ (?:Address|Leak|Memory|UndefinedBehavior)Sanitizer
	|\bruntime\ error:
	|exited\ on\ signal\ (?:4|6|7|8|11)\b/x;

sub sanitizer_reports {
	my ($self) = @_;
	my @found;
	for my $f (glob "$self->{dir}/*.log") {
		my $text = $self->read_file($f) // next;
		push @found, "$f: $1" while $text =~ /^(.*(?:$CRASH_RE).*)$/mg;
	}
	return @found;
}

# Reports found when a harness was destroyed (a test script's lexicals
# are destroyed before END blocks run).
our @REPORTS;

# After the test's own END (LIFO: this one runs first): fail the script
# if any server process reported memory errors, undefined behaviour or
# crashed, whatever the test itself checked.
END {
	if ($$ == $MAIN_PID) {
		for my $t (grep { defined } @INSTANCES) {
			$t->stop if $t->{pid};
			push @REPORTS, $t->sanitizer_reports;
		}
		if (@REPORTS) {
			diag("server process reports:\n  " . join("\n  ", @REPORTS));
			$? ||= 254;
		}
	}
}

sub dir { $_[0]{dir} }
sub conf_path { "$_[0]{dir}/portier.conf" }
sub pid_file { "$_[0]{dir}/portier.pid" }
sub error_log { "$_[0]{dir}/error.log" }

# A free TCP port on 127.0.0.1, the same for a given index for the test's
# life. The kernel picks it, so parallel tests do not collide.
sub port {
	my ($self, $n) = @_;
	$n //= 0;
	return $self->{ports}[$n] if defined $self->{ports}[$n];
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 1, ReuseAddr => 1)
		or die "no free port: $!";
	$self->{ports}[$n] = $s->sockport;
	close $s;
	return $self->{ports}[$n];
}

sub write_file {
	my ($self, $name, $content, $mode) = @_;
	my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
	make_path(dirname($path));
	open my $fh, '>', $path or die "$path: $!";
	binmode $fh;
	print $fh $content;
	close $fh;
	chmod $mode, $path if defined $mode;
	return $path;
}

sub read_file {
	my ($self, $name) = @_;
	my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
	open my $fh, '<', $path or return undef;
	local $/;
	my $c = <$fh>;
	close $fh;
	return $c;
}

# Replace %%PORT_n%% and %%DIR%%; add the settings every test needs unless
# the config sets them itself.
sub expand {
	my ($self, $text) = @_;
	$text =~ s/%%PORT_(\d+)%%/$self->port($1)/ge;
	$text =~ s/%%DIR%%/$self->{dir}/g;
	$text =~ s/%%TOP%%/$TOP/g;
	return $text;
}

sub config {
	my ($self, $text, %opt) = @_;
	$text = $self->expand($text);
	my $pre = '';
	$pre .= "daemon = false;\n" unless $text =~ /^\s*daemon\s*=/m;
	$pre .= "pid_file = \"$self->{dir}/portier.pid\";\n"
		unless $text =~ /^\s*pid_file\s*=/m;
	$pre .= "error_log = \"$self->{dir}/error.log\";\n"
		unless $text =~ /^\s*error_log\s*=/m;
	$pre .= "log_level = \"info\";\n" unless $text =~ /^\s*log_level\s*=/m;
	$pre .= "worker_processes = 1;\n"
		unless $text =~ /^\s*worker_processes\s*=/m;
	$self->write_file($opt{file} // 'portier.conf', $pre . $text);
	return $self;
}

# Run portier with args; returns (exit code, stdout, stderr).
sub run_cmd {
	my ($self, @args) = @_;
	my $out = "$self->{dir}/cmd.out";
	my $err = "$self->{dir}/cmd.err";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDOUT, '>', $out or die;
		open STDERR, '>', $err or die;
		exec(binary(), @args) or exit 127;
	}
	waitpid($pid, 0);
	my $code = $? >> 8;
	return ($code, $self->read_file($out) // '', $self->read_file($err) // '');
}

# Poll cond until it returns true or timeout seconds pass.
sub wait_for {
	my ($cond, $timeout) = @_;
	$timeout //= 10;
	my $end = time() + $timeout;
	while (1) {
		my $r = $cond->();
		return $r if $r;
		return 0 if time() > $end;
		sleep(0.02);
	}
}

sub can_connect {
	my ($port) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
		Proto => 'tcp', Timeout => 1);
	return 0 unless $s;
	close $s;
	return 1;
}

# Start portier in the foreground (daemon = false) as our child and wait
# until the master wrote its pid file, every worker runs, and port 0
# accepts. Options: args (more arguments), workers (how many to wait
# for), no_port (do not wait for port 0), bin (another binary), no_pid
# (do not wait for the pid file: -F without pid_file).
sub run {
	my ($self, %opt) = @_;
	my @args = ('-c', $self->conf_path, @{ $opt{args} // [] });
	my $bin = $opt{bin} // binary();
	unlink $self->pid_file;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDOUT, '>>', "$self->{dir}/stdout.log" or die;
		open STDERR, '>>', "$self->{dir}/stderr.log" or die;
		exec($bin, @args) or exit 127;
	}
	$self->{pid} = $pid;
	my $workers = $opt{workers} // 1;
	my $ok = wait_for(sub {
		return 0 if waitpid($pid, WNOHANG) == $pid;
		return 0 unless $opt{no_pid} || -s $self->pid_file;
		return 0 if @{ [ $self->worker_pids ] } < $workers;
		return 1 if $opt{no_port};
		return can_connect($self->port(0));
	}, 10);
	unless ($ok) {
		my $err = ($self->read_file('stderr.log') // '')
			. ($self->read_file('error.log') // '');
		die "portier did not start:\n$err";
	}
	return $self;
}

sub master_pid { $_[0]{pid} }

# Children of a process, from /proc.
sub children {
	my ($ppid) = @_;
	my @kids;
	for my $stat (glob '/proc/[0-9]*/stat') {
		open my $fh, '<', $stat or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line;
		# pid (comm) state ppid ...
		next unless $line =~ /^(\d+) \(.*\) \S (\d+)/;
		push @kids, $1 if $2 == $ppid;
	}
	return sort { $a <=> $b } @kids;
}

sub cmdline {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/cmdline" or return '';
	local $/;
	my $c = <$fh> // '';
	close $fh;
	$c =~ s/\0+$//;
	$c =~ s/\0/ /g;
	return $c;
}

sub worker_pids {
	my ($self, $master) = @_;
	$master //= $self->{pid};
	return grep { cmdline($_) =~ /^portier: worker process/ }
		children($master);
}

sub signal {
	my ($self, $sig, $pid) = @_;
	kill $sig, $pid // $self->{pid};
}

sub alive {
	my ($pid) = @_;
	return kill(0, $pid) && !(-e "/proc/$pid/stat"
		&& (do { open my $f, '<', "/proc/$pid/stat"; my $l = <$f>;
			$l && $l =~ /^\d+ \(.*\) Z/ }));
}

# Stop (QUIT, then TERM, then KILL) and reap our child master.
sub stop {
	my ($self) = @_;
	my $pid = $self->{pid} or return;
	kill 'QUIT', $pid;
	my $gone = wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 10);
	unless ($gone) {
		kill 'TERM', $pid;
		$gone = wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 5);
	}
	unless ($gone) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
	$self->{exit_status} = $?;
	$self->{pid} = undef;
}

sub DESTROY {
	my ($self) = @_;
	local $?;
	$self->stop if $self->{pid};
	# not in a child the test forked (a client, a backend)
	return if ($self->{owner} // $$) != $$;
	push @REPORTS, $self->sanitizer_reports;
	stop_pid($_) for @{ $self->{also_stop} // [] };
	# whatever else still runs from this test's directory (a master that
	# a failing upgrade test lost track of)
	for my $stat (glob '/proc/[0-9]*/stat') {
		my ($pid) = $stat =~ m{/proc/(\d+)/};
		stop_pid($pid) if cmdline($pid) =~ m{^portier: master process .*\Q$self->{dir}/};
	}
}

# ---- processes -----------------------------------------------------------

# Stop pid at the end of the test too (a master started by an upgrade,
# which is not our child).
sub also_stop {
	my ($self, $pid) = @_;
	push @{ $self->{also_stop} }, $pid if $pid;
}

# QUIT, then TERM, then KILL a process that need not be our child.
sub stop_pid {
	my ($pid) = @_;
	return unless $pid && alive($pid);
	for my $sig (qw(QUIT TERM KILL)) {
		kill $sig, $pid;
		return if wait_exit($pid, $sig eq 'KILL' ? 5 : 10);
	}
}

# Wait until pid has exited (a zombie counts as exited; our own child is
# reaped). True if it did within timeout seconds.
sub wait_exit {
	my ($pid, $timeout) = @_;
	return wait_for(sub {
		waitpid($pid, WNOHANG);
		return !alive($pid);
	}, $timeout // 10);
}

# Fields of /proc/PID/stat after the command: (state, ppid, ...).
sub proc_stat {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return ();
	my $line = <$fh> // '';
	close $fh;
	$line =~ s/^\d+ \(.*\) // or return ();
	return split ' ', $line;
}

sub ppid_of { (proc_stat($_[0]))[1] }

# Real, effective, saved and filesystem uids of a process.
sub uids_of {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return ();
	while (<$fh>) {
		return split ' ', $1 if /^Uid:\s+(.*)$/;
	}
	return ();
}

# The pid in a pid file, or undef.
sub read_pid {
	my ($self, $file) = @_;
	my $c = $self->read_file($file // $self->pid_file) // return undef;
	return $c =~ /^(\d+)\n?\z/ ? $1 : undef;
}

# Inodes of the TCP sockets listening on 127.0.0.1:port (or any address
# with that port if $any), from /proc/net/tcp.
sub listen_inodes {
	my ($port, $any) = @_;
	my @inodes;
	open my $fh, '<', '/proc/net/tcp' or return ();
	while (<$fh>) {
		my @f = split ' ';
		next unless @f > 9 && $f[3] eq '0A';
		my ($ip, $p) = split /:/, $f[1];
		next unless hex($p) == $port;
		next unless $any || $ip eq '0100007F';
		push @inodes, $f[9];
	}
	close $fh;
	return sort { $a <=> $b } @inodes;
}

# Inodes of the sockets a process has open, from /proc/PID/fd.
sub socket_inodes_of {
	my ($pid) = @_;
	my %in;
	opendir my $d, "/proc/$pid/fd" or return ();
	for my $fd (readdir $d) {
		my $l = readlink "/proc/$pid/fd/$fd" // next;
		$in{$1} = 1 if $l =~ /^socket:\[(\d+)\]$/;
	}
	closedir $d;
	return sort { $a <=> $b } keys %in;
}

# The master's children that are workers, waiting for exactly n of them
# (a reload or respawn may be under way). Returns the pids, or () on
# timeout.
sub wait_workers {
	my ($self, $n, $master, $timeout) = @_;
	my @w;
	wait_for(sub {
		@w = grep { cmdline($_) eq 'portier: worker process' }
			children($master // $self->{pid});
		return @w == $n;
	}, $timeout // 10) or return ();
	return @w;
}

# Wait until the log file matches re; true if it did.
sub wait_log {
	my ($self, $re, $file, $timeout) = @_;
	return wait_for(sub { $self->log_has($re, $file) }, $timeout // 10);
}

# ---- clients ---------------------------------------------------------------

sub connect_to {
	my ($self, $port) = @_;
	return IO::Socket::INET->new(PeerAddr => '127.0.0.1',
		PeerPort => $port // $self->port(0), Proto => 'tcp', Timeout => 5);
}

# Read from $s until $done->($buf) is true, EOF, or the timeout.
sub read_until {
	my ($s, $done, $timeout) = @_;
	$timeout //= 5;
	my $buf = '';
	my $sel = IO::Select->new($s);
	my $end = time() + $timeout;
	while (!$done || !$done->($buf)) {
		my $left = $end - time();
		last if $left <= 0;
		last unless $sel->can_read($left);
		my $n = sysread($s, $buf, 65536, length $buf);
		last unless $n;
	}
	return $buf;
}

# Send raw bytes; read until the server closes (or the timeout).
sub raw {
	my ($self, $bytes, %opt) = @_;
	my $s = $self->connect_to($opt{port}) or return undef;
	syswrite($s, $bytes) if length $bytes;
	shutdown($s, 1) if $opt{half_close};
	my $buf = read_until($s, $opt{until}, $opt{timeout});
	close $s;
	return $buf;
}

# Length of the first complete response in $buf, or 0 if incomplete.
# $head_only: a response to HEAD (no body whatever the headers say).
sub response_length {
	my ($buf, $head_only) = @_;
	my $end = index($buf, "\r\n\r\n");
	return 0 if $end < 0;
	my $head = substr($buf, 0, $end);
	my $hlen = $end + 4;
	my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};
	return 0 unless defined $status;
	return $hlen if $head_only || $status == 204 || $status == 304
		|| $status < 200;
	if ($head =~ /^content-length:\s*(\d+)/mi) {
		return length($buf) >= $hlen + $1 ? $hlen + $1 : 0;
	}
	if ($head =~ /^transfer-encoding:\s*chunked/mi) {
		my $p = $hlen;
		while (1) {
			my $nl = index($buf, "\r\n", $p);
			return 0 if $nl < 0;
			my $size = hex(substr($buf, $p, $nl - $p));
			$p = $nl + 2 + $size + 2;
			return 0 if $p > length $buf;
			return $p if $size == 0;
		}
	}
	return 0; # delimited by close
}

# Parse one response from bytes: { status, reason, headers (lc name =>
# value, repeated joined by ", "), header_list, body, raw }.
sub parse_response {
	my ($raw, $head_only) = @_;
	return undef unless defined $raw && length $raw;
	my $end = index($raw, "\r\n\r\n");
	return { raw => $raw, status => 0 } if $end < 0;
	my ($line, @lines) = split /\r\n/, substr($raw, 0, $end);
	my ($status, $reason) = $line =~ m{^HTTP/1\.[01] (\d{3}) ?(.*)$};
	my (%h, @list);
	for (@lines) {
		my ($n, $v) = /^([^:]+):\s*(.*)$/ or next;
		push @list, [$n, $v];
		$h{lc $n} = exists $h{lc $n} ? "$h{lc $n}, $v" : $v;
	}
	my $len = response_length($raw, $head_only);
	my $body = $len ? substr($raw, $end + 4, $len - $end - 4)
		: substr($raw, $end + 4);
	if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
		my ($out, $p) = ('', 0);
		while ($body =~ /\G([0-9a-fA-F]+)[^\r]*\r\n/gc) {
			my $n = hex $1;
			last if $n == 0;
			$out .= substr($body, pos($body), $n);
			pos($body) = pos($body) + $n + 2;
		}
		$body = $out;
	}
	return { status => $status // 0, reason => $reason, headers => \%h,
		header_list => \@list, body => $body, raw => $raw,
		rest => $len ? substr($raw, $len) : '' };
}

# One request on a new connection with "Connection: close".
sub request {
	my ($self, $method, $path, %opt) = @_;
	my $host = $opt{host} // 'localhost';
	my $req = "$method $path HTTP/1.1\r\nHost: $host\r\n";
	$req .= "Connection: close\r\n" unless $opt{keepalive};
	for my $h (@{ $opt{headers} // [] }) {
		$req .= "$h\r\n";
	}
	if (defined $opt{body}) {
		$req .= "Content-Length: " . length($opt{body}) . "\r\n";
	}
	$req .= "\r\n" . ($opt{body} // '');
	my $raw = $self->raw($req, port => $opt{port}, timeout => $opt{timeout});
	return parse_response($raw, $method eq 'HEAD');
}

sub get { my ($self, $path, %o) = @_; $self->request('GET', $path, %o) }
sub head { my ($self, $path, %o) = @_; $self->request('HEAD', $path, %o) }

# Send several requests on one connection and read n responses.
sub pipeline {
	my ($self, $bytes, $n, %opt) = @_;
	my $s = $self->connect_to($opt{port}) or return ();
	syswrite($s, $bytes);
	my @out;
	my $buf = '';
	for (1 .. $n) {
		my $len;
		$buf .= read_until($s,
			sub { $len = response_length($buf . $_[0]) }, 5)
			unless ($len = response_length($buf));
		last unless $len;
		push @out, parse_response(substr($buf, 0, $len));
		$buf = substr($buf, $len);
	}
	close $s;
	return @out;
}

# Start a download that the server can not finish at once: a small
# receive buffer, and the caller reads at a bounded pace (slow_read). The
# kernel lets the server buffer a few MB of it: use 8 MB or more. Returns
# the socket; the request is sent (keep-alive, as browsers do).
sub slow_get {
	my ($self, $path, %opt) = @_;
	socket(my $s, Socket::PF_INET(), Socket::SOCK_STREAM(), 0)
		or die "socket: $!";
	setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 16384)
		or die "setsockopt: $!";
	connect($s, Socket::pack_sockaddr_in($opt{port} // $self->port(0),
		Socket::inet_aton('127.0.0.1'))) or die "connect: $!";
	syswrite($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n");
	return $s;
}

# Read from s at about 4 MB/s (or with another pause between reads of
# 16 KB, in seconds) until the buffer holds want bytes, EOF, or 10 s of
# silence.
sub slow_read {
	my ($s, $buf, $want, $pace) = @_;
	$pace //= 0.004;
	my $sel = IO::Select->new($s);
	while (length($$buf) < $want) {
		last unless $sel->can_read(10);
		my $n = sysread($s, $$buf, 16384, length $$buf);
		last unless $n;
		sleep($pace) if $pace;
	}
}

# Head and body of a response in buf.
sub split_response {
	my ($buf) = @_;
	my $i = index($buf, "\r\n\r\n");
	return ('', '') if $i < 0;
	return (substr($buf, 0, $i), substr($buf, $i + 4));
}

# Deterministic contents of n bytes (n a multiple of 64 KB): blocks of
# pseudo-random words, each block numbered, so a byte out of place shows.
sub test_data {
	my ($n) = @_;
	my $block = join '', map { pack 'N', $_ * 2654435761 % 4294967296 }
		1 .. 16383;
	return join '', map { pack('N', $_) . $block } 0 .. $n / 65536 - 1;
}

# A size for a download that the server can not hand to the kernel at
# once: the socket send buffer may grow to tcp_wmem's maximum, so that
# plus 4 MB (and at least 8 MB).
sub inflight_size {
	open my $fh, '<', '/proc/sys/net/ipv4/tcp_wmem' or return 8 << 20;
	my (undef, undef, $max) = split ' ', <$fh> // '';
	close $fh;
	my $n = ($max // 0) + (4 << 20);
	$n = 8 << 20 if $n < (8 << 20);
	return $n - $n % 65536;
}

# What comes next on a socket within timeout seconds: "eof" (the server
# closed, possibly with a reset), "data" (bytes came) or "timeout".
sub next_event {
	my ($s, $timeout) = @_;
	my $sel = IO::Select->new($s);
	return 'timeout' unless $sel->can_read($timeout // 5);
	my $n = sysread($s, my $buf, 65536);
	return $n ? 'data' : 'eof';
}

sub log_has {
	my ($self, $re, $file) = @_;
	my $log = $self->read_file($file // 'error.log') // '';
	return $log =~ $re;
}

1;
