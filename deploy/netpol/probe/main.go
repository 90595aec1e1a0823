// Command probe is the network probe of the real node's NetworkPolicy tests: `probe check` tries TCP
// connections and DNS lookups (over UDP and over TCP) and prints what happened to each as one JSON
// document on stdout; `probe serve` listens on TCP ports so that a pod or a host address can be a
// target. It is test tooling (never shipped), deliberately standard-library only and static, so its
// image is one file and runs as any uid under Pod Security "restricted".
//
//	probe check [-timeout 2s] tcp:HOST:PORT dns-udp:SERVER:PORT:NAME dns-tcp:SERVER:PORT:NAME ...
//	probe serve [-listen ADDRESS] PORT...
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Result is what one check saw. Outcome is "connected" (TCP handshake done), "answered" (a DNS
// response came back), "refused" (a TCP reset, or ICMP port unreachable, which a REJECT rule sends),
// "unreachable" (ICMP host/network unreachable or administratively prohibited), "timeout" (nothing
// came back: dropped) or "error" (anything else, with the error in Detail).
type Result struct {
	Check     string   `json:"check"`
	Outcome   string   `json:"outcome"`
	Detail    string   `json:"detail,omitempty"`
	Rcode     int      `json:"rcode,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Millis    int64    `json:"ms"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "check":
		check(os.Args[2:])
	case "serve":
		serve(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: probe check [-timeout 2s] CHECK... | probe serve [-listen ADDRESS] PORT...")
	os.Exit(2)
}

func check(args []string) {
	flags := flag.NewFlagSet("check", flag.ExitOnError)
	timeout := flags.Duration("timeout", 2*time.Second, "time allowed for each check")
	_ = flags.Parse(args)
	results := make([]Result, 0, flags.NArg())
	for _, spec := range flags.Args() {
		started := time.Now()
		result := run(spec, *timeout)
		result.Check = spec
		result.Millis = time.Since(started).Milliseconds()
		results = append(results, result)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"results": results}); err != nil {
		os.Exit(1)
	}
}

func run(spec string, timeout time.Duration) Result {
	kind, rest, _ := strings.Cut(spec, ":")
	switch kind {
	case "tcp":
		conn, err := net.DialTimeout("tcp", rest, timeout)
		if err != nil {
			return failure(err)
		}
		_ = conn.Close()
		return Result{Outcome: "connected"}
	case "dns-udp", "dns-tcp":
		// SERVER:PORT:NAME; the name may not contain a colon, the server is IPv4.
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) != 3 {
			return Result{Outcome: "error", Detail: "want " + kind + ":SERVER:PORT:NAME"}
		}
		return lookup(strings.TrimPrefix(kind, "dns-"), net.JoinHostPort(parts[0], parts[1]), parts[2], timeout)
	}
	return Result{Outcome: "error", Detail: "unknown check " + kind}
}

func failure(err error) Result {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Result{Outcome: "refused", Detail: err.Error()}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return Result{Outcome: "unreachable", Detail: err.Error()}
	case errors.As(err, &netErr) && netErr.Timeout():
		return Result{Outcome: "timeout", Detail: err.Error()}
	}
	return Result{Outcome: "error", Detail: err.Error()}
}

// lookup asks `server` for the A records of `name` with one query over `network` ("udp" or "tcp"),
// with no retry, search list or fallback: each transport is tested on its own, which a resolver
// library (falling back from UDP to TCP, trying search domains) would blur.
func lookup(network, server, name string, timeout time.Duration) Result {
	query, id := dnsQuery(name)
	conn, err := net.DialTimeout(network, server, timeout)
	if err != nil {
		return failure(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var response []byte
	if network == "tcp" {
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(query)))
		if _, err := conn.Write(append(framed, query...)); err != nil {
			return failure(err)
		}
		var length [2]byte
		if _, err := readFull(conn, length[:]); err != nil {
			return failure(err)
		}
		response = make([]byte, binary.BigEndian.Uint16(length[:]))
		if _, err := readFull(conn, response); err != nil {
			return failure(err)
		}
	} else {
		if _, err := conn.Write(query); err != nil {
			return failure(err)
		}
		buffer := make([]byte, 1500)
		n, err := conn.Read(buffer)
		if err != nil {
			return failure(err)
		}
		response = buffer[:n]
	}
	rcode, addresses, err := dnsAnswers(response, id)
	if err != nil {
		return Result{Outcome: "error", Detail: err.Error()}
	}
	return Result{Outcome: "answered", Rcode: rcode, Addresses: addresses}
}

func readFull(conn net.Conn, buffer []byte) (int, error) {
	read := 0
	for read < len(buffer) {
		n, err := conn.Read(buffer[read:])
		read += n
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

// dnsQuery builds a recursive query for the A records of name (RFC 1035 section 4.1).
func dnsQuery(name string) ([]byte, uint16) {
	id := uint16(rand.Uint32())
	message := binary.BigEndian.AppendUint16(nil, id)
	message = append(message, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; one question
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		message = append(message, byte(len(label)))
		message = append(message, label...)
	}
	return append(message, 0, 0, 1, 0, 1), id // root; QTYPE A, QCLASS IN
}

// dnsAnswers returns the response code and the IPv4 addresses of the A records in a response.
func dnsAnswers(message []byte, id uint16) (int, []string, error) {
	if len(message) < 12 || binary.BigEndian.Uint16(message) != id {
		return 0, nil, errors.New("not a response to this query")
	}
	rcode := int(message[3] & 0x0f)
	questions, answers := int(binary.BigEndian.Uint16(message[4:])), int(binary.BigEndian.Uint16(message[6:]))
	offset := 12
	var err error
	for range questions {
		if offset, err = skipName(message, offset); err != nil {
			return rcode, nil, err
		}
		offset += 4
	}
	addresses := []string{}
	for range answers {
		if offset, err = skipName(message, offset); err != nil {
			return rcode, nil, err
		}
		if offset+10 > len(message) {
			return rcode, nil, errors.New("truncated answer")
		}
		kind, length := binary.BigEndian.Uint16(message[offset:]), int(binary.BigEndian.Uint16(message[offset+8:]))
		offset += 10
		if offset+length > len(message) {
			return rcode, nil, errors.New("truncated record")
		}
		if kind == 1 && length == 4 {
			addresses = append(addresses, net.IP(message[offset:offset+4]).String())
		}
		offset += length
	}
	return rcode, addresses, nil
}

func skipName(message []byte, offset int) (int, error) {
	for offset < len(message) {
		length := int(message[offset])
		switch {
		case length == 0:
			return offset + 1, nil
		case length&0xc0 == 0xc0: // a compression pointer ends the name
			return offset + 2, nil
		}
		offset += 1 + length
	}
	return offset, errors.New("truncated name")
}

// serve accepts TCP connections on each port until SIGTERM, writes one line naming itself and closes.
func serve(args []string) {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	address := flags.String("listen", "", "address to listen on (default: every address)")
	_ = flags.Parse(args)
	if flags.NArg() == 0 {
		usage()
	}
	hostname, _ := os.Hostname()
	for _, port := range flags.Args() {
		if _, err := strconv.Atoi(port); err != nil {
			usage()
		}
		listener, err := net.Listen("tcp", net.JoinHostPort(*address, port))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			for {
				conn, err := listener.Accept()
				if err != nil {
					time.Sleep(100 * time.Millisecond) // out of descriptors, say: do not spin
					continue
				}
				_, _ = fmt.Fprintf(conn, "probe %s %s\n", hostname, listener.Addr())
				_ = conn.Close()
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "probe: listening on %v\n", flags.Args())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
}
