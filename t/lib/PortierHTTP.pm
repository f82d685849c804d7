package PortierHTTP;

# Raw-socket helpers of the HTTP core tests (t/30..t/35), on top of
# PortierTest: reading several responses off one connection, telling a
# close from a silence, pacing a deliberately slow client, reading a
# case corpus, and a worker's resident memory. Every wait is bounded.
#
# A corpus is the format of t/unit/data/http_requests.txt:
#   === name          starts a case
#   key value         a setting or an expectation
#   | bytes           one wire line; the reader appends CRLF
#   # text            a comment; blank lines are ignored
# After "|" one space is dropped, "|" alone is an empty line, and a
# backslash at the very end of a wire line suppresses its CRLF. Escapes in
# wire lines and values: \r \n \t \0 \\ \xHH, and {{TEXT*N}} for TEXT
# repeated N times (long lines stay readable).

use strict;
use warnings;

use Exporter qw(import);
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF SOCK_STREAM IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);
use PortierTest;

our @EXPORT = qw(unescape read_corpus connect_raw read_responses
	socket_owner conn_per_worker rx_queue
	wait_eof send_paced write_all rss_kib wait_log nofile_limit);

# A client that writes to a closed connection must see EPIPE, not die.
$SIG{PIPE} = 'IGNORE';

sub unescape {
	my ($s) = @_;
	$s =~ s/\{\{(.*?)\*(\d+)\}\}/$1 x $2/ge;
	my %esc = (r => "\r", n => "\n", t => "\t", 0 => "\0", '\\' => '\\');
	$s =~ s/\\(x([0-9a-fA-F]{2})|[rnt0\\]|(.))/
		defined $3 ? die("bad escape \\$3 in: $_[0]\n")
		: defined $2 ? chr(hex $2) : $esc{$1}/ge;
	return $s;
}

# Cases of a corpus: a list of { name, wire, keys => { key => [values] },
# line }.
sub read_corpus {
	my ($fh) = @_;
	my (@cases, $c, $cont);
	while (my $l = <$fh>) {
		chomp $l;
		if ($l =~ /^===\s*(.*)$/) {
			$c = { name => $1, wire => '', keys => {}, line => $. };
			push @cases, $c;
			$cont = 0;
			next;
		}
		next if $l =~ /^\s*(#|$)/;
		die "line $.: text before the first case\n" unless $c;
		if ($l =~ /^\|(?: (.*))?$/) {
			my $w = $1 // '';
			my $nocrlf = $w =~ s/(?<!\\)((?:\\\\)*)\\$/$1/;
			$c->{wire} .= unescape($w) . ($nocrlf ? '' : "\r\n");
			next;
		}
		my ($k, $v) = $l =~ /^(\S+)\s*(.*)$/;
		push @{ $c->{keys}{$k} }, unescape($v);
	}
	return @cases;
}

sub connect_raw {
	my ($t, %opt) = @_;
	my $s = IO::Socket::INET->new(Proto => 'tcp', Type => SOCK_STREAM);
	die "socket: $!" unless $s;
	# a small receive buffer must be set before the connection exists
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, $opt{rcvbuf}) if $opt{rcvbuf};
	setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
	my $addr = Socket::pack_sockaddr_in($opt{port} // $t->port(0),
		Socket::inet_aton('127.0.0.1'));
	connect($s, $addr) or die "connect: $!";
	$s->autoflush(1);
	return $s;
}

# Write everything (blocking); false if the peer refused part of it.
sub write_all {
	my ($s, $bytes) = @_;
	my $off = 0;
	while ($off < length $bytes) {
		my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
		return 0 unless defined $n;
		$off += $n;
	}
	return 1;
}

# Send in pieces of $piece bytes (or at the offsets of a list), pausing
# $delay seconds between them: a deliberately slow client.
sub send_paced {
	my ($s, $bytes, $piece, $delay) = @_;
	my @cuts;
	if (ref $piece) {
		@cuts = grep { $_ > 0 && $_ < length $bytes } @$piece;
	} else {
		for (my $p = $piece; $p < length $bytes; $p += $piece) {
			push @cuts, $p;
		}
	}
	my $from = 0;
	for my $to (@cuts, length $bytes) {
		next if $to <= $from;
		write_all($s, substr($bytes, $from, $to - $from)) or return 0;
		$from = $to;
		sleep($delay) if $delay && $to < length $bytes;
	}
	return 1;
}

# Read up to $n responses (fewer if the connection closes or $timeout
# passes). $head_only: array of flags, one per expected response, for
# responses to HEAD. Returns a hash: responses (parsed), rest (bytes after
# the last complete response), eof (the server closed), reset, elapsed.
sub read_responses {
	my ($s, $n, %opt) = @_;
	my $timeout = $opt{timeout} // 5;
	my $ho = $opt{head_only} // [];
	my $sel = IO::Select->new($s);
	my ($buf, @out, $eof, $reset) = ('');
	my $start = time();
	my $end = $start + $timeout;
	while (1) {
		while (@out < $n) {
			my $len = PortierTest::response_length($buf, $ho->[@out]);
			last unless $len;
			push @out, PortierTest::parse_response(
				substr($buf, 0, $len), $ho->[@out]);
			$buf = substr($buf, $len);
		}
		last if @out >= $n && !$opt{until_eof};
		my $left = $end - time();
		last if $left <= 0;
		last unless $sel->can_read($left);
		my $r = sysread($s, $buf, 65536, length $buf);
		if (!defined $r) {
			$reset = 1;
			last;
		}
		if ($r == 0) {
			$eof = 1;
			last;
		}
	}
	return { responses => \@out, rest => $buf, eof => $eof,
		reset => $reset, elapsed => time() - $start };
}

# Read and drop until the server closes or $timeout passes. Returns a hash:
# eof (closed: EOF or reset), bytes (how many came), elapsed.
sub wait_eof {
	my ($s, $timeout) = @_;
	my $sel = IO::Select->new($s);
	my $start = time();
	my ($bytes, $eof) = (0, 0);
	while (1) {
		my $left = $start + $timeout - time();
		last if $left <= 0;
		last unless $sel->can_read($left);
		my $r = sysread($s, my $chunk, 65536);
		if (!$r) {
			$eof = 1;
			last;
		}
		$bytes += $r;
	}
	return { eof => $eof, bytes => $bytes, elapsed => time() - $start };
}

# Resident memory of a process in KiB (VmRSS), or undef.
sub rss_kib {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	while (<$fh>) {
		return $1 if /^VmRSS:\s+(\d+)\s+kB/;
	}
	return undef;
}

# Poll the error log until it matches $re; true if it did within $timeout.
sub wait_log {
	my ($t, $re, $timeout) = @_;
	return PortierTest::wait_for(sub { $t->log_has($re) }, $timeout // 10);
}

# The soft and hard open-files limits of this process.
sub nofile_limit {
	open my $fh, '<', '/proc/self/limits' or return (1024, 1024);
	while (<$fh>) {
		return ($1, $2) if /^Max open files\s+(\d+)\s+(\d+)/;
	}
	return (1024, 1024);
}


# The worker (one of @workers) holding the server side of the TCP
# connection from client port cport to port sport, found by the socket's
# inode in /proc/net/tcp; undef if none (yet).
sub socket_owner {
	my ($sport, $cport, @workers) = @_;
	my $inode;
	open my $fh, '<', '/proc/net/tcp' or return undef;
	while (<$fh>) {
		my @f = split ' ';
		next unless @f > 9 && $f[0] =~ /^\d+:$/;
		my (undef, $lp) = split /:/, $f[1];
		my (undef, $rp) = split /:/, $f[2];
		$inode = $f[9] if hex($lp) == $sport && hex($rp) == $cport;
	}
	close $fh;
	return undef unless $inode;
	for my $w (@workers) {
		return $w if grep { $_ == $inode } PortierTest::socket_inodes_of($w);
	}
	return undef;
}

# One open connection to portier owned by each of @workers (the kernel
# spreads them; the owner is found from the sockets' inodes):
# { pid => socket }. conn_per_worker_on does it for another port than
# the first.
sub conn_per_worker {
	my ($t, @workers) = @_;
	return conn_per_worker_on($t, $t->port(0), @workers);
}

sub conn_per_worker_on {
	my ($t, $port, @workers) = @_;
	my (%by, @extra);
	for (1 .. 400) {
		last if keys %by == @workers;
		my $s = connect_raw($t, port => $port);
		my $owner;
		PortierTest::wait_for(sub {
			$owner = socket_owner($port, $s->sockport, @workers) }, 5);
		if (defined $owner && !$by{$owner}) {
			$by{$owner} = $s;
		} else {
			push @extra, $s;
		}
	}
	close $_ for @extra;
	return \%by;
}

# Bytes waiting unread in the receive queue of the local TCP socket s
# (from /proc/net/tcp); -1 if it is not found.
sub rx_queue {
	my ($s) = @_;
	my ($port) = Socket::unpack_sockaddr_in(getsockname($s));
	open my $fh, '<', '/proc/net/tcp' or return -1;
	while (<$fh>) {
		my @f = split ' ';
		next unless @f > 4 && $f[0] =~ /^\d+:$/;
		my (undef, $lp) = split /:/, $f[1];
		next unless hex($lp) == $port && $f[2] !~ /^0+:0+$/;
		my (undef, $rx) = split /:/, $f[4];
		return hex($rx);
	}
	return -1;
}

1;
