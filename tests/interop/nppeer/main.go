// Command nppeer is an independent, minimal Go implementation of the np-quic
// stream pool protocol (docs/protocol.md) and of the np-test data
// exchange (docs/np-test.md). It exists only to test qpool for
// wire-compatibility; it is written from the protocol description and shares
// no code with the reference package.
//
//	nppeer server -listen ADDR [-streams N] [-bytes L] [-max-cap N]
//	       [-cert F -key F] [-alpn np-quic] [-client-ip IP]
//	       [-keep-alive DUR] [-timeout DUR] [-linger DUR]
//	nppeer client -target ADDR [-streams N] [-bytes L] [-min-cap N]
//	       [-max-cap N] [-alpn np-quic] [-keep-alive DUR] [-timeout DUR]
//	       [-insecure=true] [-linger DUR]
//	nppeer server -listen ADDR -bulk-secs S [-bulk-bytes N] ...
//	nppeer client -target ADDR -bulk ...
//
// The server prints "listening on ADDR" once it accepts connections. Both
// modes print "np-test: N streams ok, L bytes each way" and exit 0 on
// success, or print "np-test: FAIL <reason>" to stderr and exit 1.
//
// Bulk mode (the impaired-path benchmark, bench/impaired.sh) moves one
// stream's worth of bytes from the server to the client instead: the server
// takes 00000000 and then one stream, writes that stream's ID on 00000000,
// waits for the client's go byte on it (so that nothing is sent before the
// client has taken it), writes zeros until -bulk-bytes or -bulk-secs is
// reached, whichever comes first, and closes (FIN). The client reads to EOF
// and prints "bulk bytes B secs T", T from the first byte to EOF (with
// " timeout" appended if -timeout came first: B and T are then partial).
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"time"

	quic "github.com/lucas-clemente/quic-go"
)

const (
	controlID    = "00000000"
	setupTimeout = 60 * time.Second // client wait for the 4-byte ID
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "np-test: FAIL "+format+"\n", args...)
	os.Exit(1)
}

// describe adds to a QUIC error whether the peer or this side raised it.
func describe(err error) string {
	var te *quic.TransportError
	var ae *quic.ApplicationError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%v (%s)", err, origin(te.Remote))
	case errors.As(err, &ae):
		return fmt.Sprintf("%v (%s)", err, origin(ae.Remote))
	}
	return err.Error()
}

func origin(remote bool) string {
	if remote {
		return "from peer"
	}
	return "local"
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "nppeer: "+format+"\n", args...)
}

// ---------------------------------------------------------------------------
// Server pool

type pooled struct {
	id   string
	s    quic.Stream
	conn quic.Connection
}

type serverPool struct {
	maxCap int

	mu       sync.Mutex
	idle     []pooled      // FIFO, oldest first
	assigned bool          // an ID was ever assigned (so 00000000 is used)
	connErr  error         // why the last authorized connection ended
	wake     chan struct{} // closed and replaced on every change
}

func newServerPool(maxCap int) *serverPool {
	return &serverPool{maxCap: maxCap, wake: make(chan struct{})}
}

func (p *serverPool) changed() { // p.mu held
	close(p.wake)
	p.wake = make(chan struct{})
}

// serveConn accepts the streams of one connection until it closes.
func (p *serverPool) serveConn(conn quic.Connection) {
	for {
		s, err := conn.AcceptStream(context.Background())
		if err != nil {
			p.mu.Lock()
			p.connErr = err
			p.changed()
			p.mu.Unlock()
			return
		}
		go p.setup(conn, s)
	}
}

// setup runs the server half of the stream setup exchange.
func (p *serverPool) setup(conn quic.Connection, s quic.Stream) {
	var b [1]byte
	s.SetReadDeadline(time.Now().Add(setupTimeout))
	if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != 0 {
		s.CancelRead(0)
		s.Close()
		return
	}
	s.SetReadDeadline(time.Time{})

	p.mu.Lock()
	if len(p.idle) >= p.maxCap {
		p.mu.Unlock()
		s.Close() // pool full: no ID
		return
	}
	id := controlID
	if p.assigned {
		id = p.randomID()
	}
	p.assigned = true
	p.idle = append(p.idle, pooled{id: id, s: s, conn: conn})
	p.changed()
	p.mu.Unlock()

	raw, _ := hex.DecodeString(id)
	if _, err := s.Write(raw); err != nil {
		logf("stream %s: writing ID: %v", id, err)
	}
}

// randomID returns a random ID that is neither 00000000 nor idle. p.mu held.
func (p *serverPool) randomID() string {
	for {
		var raw [4]byte
		if _, err := rand.Read(raw[:]); err != nil {
			fail("crypto/rand: %v", err)
		}
		id := hex.EncodeToString(raw[:])
		taken := id == controlID
		for _, e := range p.idle {
			taken = taken || e.id == id
		}
		if !taken {
			return id
		}
	}
}

// IncomingGet takes the oldest idle stream.
func (p *serverPool) IncomingGet(timeout time.Duration) (pooled, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if len(p.idle) > 0 {
			e := p.idle[0]
			p.idle = p.idle[1:]
			p.mu.Unlock()
			return e, nil
		}
		if p.connErr != nil {
			err := p.connErr
			p.mu.Unlock()
			return pooled{}, fmt.Errorf("connection closed: %s", describe(err))
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return pooled{}, errors.New("insufficient streams")
		}
	}
}

// ---------------------------------------------------------------------------
// Client pool

type clientEntry struct {
	s     quic.Stream
	taken chan struct{}
}

type clientPool struct {
	conn quic.Connection

	mu      sync.Mutex
	idle    map[string]clientEntry
	connErr error
	wake    chan struct{}
}

func newClientPool(conn quic.Connection, maxCap int) *clientPool {
	p := &clientPool{conn: conn, idle: map[string]clientEntry{}, wake: make(chan struct{})}
	go func() { // the server never opens streams: this returns the close error
		for {
			s, err := conn.AcceptStream(context.Background())
			if err != nil {
				p.mu.Lock()
				p.connErr = err
				close(p.wake)
				p.wake = make(chan struct{})
				p.mu.Unlock()
				return
			}
			s.CancelRead(0)
			s.CancelWrite(0)
		}
	}()
	// Each worker keeps one idle stream: max-cap idle streams in all.
	for i := 0; i < maxCap; i++ {
		go p.worker()
	}
	return p
}

func (p *clientPool) worker() {
	done := p.conn.Context().Done()
	for {
		id, s, err := p.setup()
		if err != nil {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
				continue
			}
		}
		e := clientEntry{s: s, taken: make(chan struct{})}
		p.mu.Lock()
		if _, dup := p.idle[id]; dup {
			p.mu.Unlock()
			s.CancelRead(0)
			s.Close()
			continue
		}
		p.idle[id] = e
		close(p.wake)
		p.wake = make(chan struct{})
		p.mu.Unlock()
		select {
		case <-e.taken:
		case <-done:
			return
		}
	}
}

// setup runs the client half of the stream setup exchange.
func (p *clientPool) setup() (string, quic.Stream, error) {
	s, err := p.conn.OpenStreamSync(p.conn.Context())
	if err != nil {
		return "", nil, err
	}
	var raw [4]byte
	_, err = s.Write([]byte{0})
	if err == nil {
		s.SetReadDeadline(time.Now().Add(setupTimeout))
		_, err = io.ReadFull(s, raw[:])
	}
	if err != nil {
		s.CancelRead(0)
		s.Close()
		return "", nil, err
	}
	s.SetReadDeadline(time.Time{})
	return hex.EncodeToString(raw[:]), s, nil
}

// OutgoingGet waits until the stream with this ID is idle and takes it.
func (p *clientPool) OutgoingGet(id string, timeout time.Duration) (quic.Stream, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if e, ok := p.idle[id]; ok {
			delete(p.idle, id)
			p.mu.Unlock()
			close(e.taken)
			return e.s, nil
		}
		if p.connErr != nil {
			err := p.connErr
			p.mu.Unlock()
			return nil, fmt.Errorf("connection closed: %s", describe(err))
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return nil, errors.New("stream not found")
		}
	}
}

// ---------------------------------------------------------------------------
// np-test data

// pattern is the splitmix64 byte stream of docs/np-test.md: each output word
// as 8 bytes little-endian, the last word truncated to make exactly n bytes.
type pattern struct {
	state uint64
	word  [8]byte
	used  int // bytes of word already returned
	left  int64
}

func newPattern(id string, tag byte, n int64) *pattern {
	raw, _ := hex.DecodeString(id)
	v := uint64(binary.BigEndian.Uint32(raw))
	return &pattern{state: v<<8 | uint64(tag), used: 8, left: n}
}

func (g *pattern) Read(b []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > g.left {
		b = b[:g.left]
	}
	for i := range b {
		if g.used == 8 {
			g.state += 0x9E3779B97F4A7C15
			z := g.state
			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
			z = (z ^ (z >> 27)) * 0x94D049BB133111EB
			z ^= z >> 31
			binary.LittleEndian.PutUint64(g.word[:], z)
			g.used = 0
		}
		b[i] = g.word[g.used]
		g.used++
	}
	g.left -= int64(len(b))
	return len(b), nil
}

// transfer writes our pattern, half-closes, reads to EOF and checks the peer's.
func transfer(s quic.Stream, id string, n int64, ours, theirs byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(s, newPattern(id, ours, n), make([]byte, 64<<10))
		if err == nil {
			err = s.Close()
		}
		werr <- err
	}()
	want := sha256.New()
	io.CopyBuffer(want, newPattern(id, theirs, n), make([]byte, 64<<10))
	got := sha256.New()
	m, err := io.CopyBuffer(got, s, make([]byte, 64<<10))
	if err != nil {
		return fmt.Errorf("read after %d bytes: %v", m, err)
	}
	if m != n {
		return fmt.Errorf("received %d bytes, want %d", m, n)
	}
	if string(got.Sum(nil)) != string(want.Sum(nil)) {
		return errors.New("SHA-256 mismatch")
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %v", err)
	}
	return nil
}

func collect(results chan error, n int) {
	for i := 0; i < n; i++ {
		if err := <-results; err != nil {
			fail("%v", err)
		}
	}
}

// ---------------------------------------------------------------------------
// Modes

func selfSignedCert() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "nppeer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fail("certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func quicConfig(ka time.Duration, maxCap int) *quic.Config {
	return &quic.Config{KeepAlivePeriod: ka, MaxIdleTimeout: 3 * ka, MaxIncomingStreams: int64(maxCap)}
}

type common struct {
	streams     int
	bytes       int64
	maxCap      int
	alpn        string
	ka, timeout time.Duration
	linger      time.Duration
	early       string
	bulk        bool
	bulkBytes   int64
	bulkSecs    float64
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.streams, "streams", 8, "number of data streams")
	fs.Int64Var(&c.bytes, "bytes", 1<<20, "bytes sent each way per stream")
	fs.IntVar(&c.maxCap, "max-cap", 32, "pool capacity")
	fs.StringVar(&c.alpn, "alpn", "np-quic", "TLS ALPN protocol")
	fs.DurationVar(&c.ka, "keep-alive", 10*time.Second, "keep-alive period (idle timeout is 3x)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "bound for the whole run")
	fs.DurationVar(&c.linger, "linger", 5*time.Second, "max wait for the peer at teardown")
	fs.StringVar(&c.early, "early", "", "write: take 00000000, write a line, Close (FIN); "+
		"read: take it 1 s later, expect the peer's line and EOF")
	fs.BoolVar(&c.bulk, "bulk", false, "bulk mode: the server writes one stream, the client reads it")
	fs.Int64Var(&c.bulkBytes, "bulk-bytes", 0, "bulk mode, server: stop writing after this many bytes (0: no limit)")
	fs.Float64Var(&c.bulkSecs, "bulk-secs", 0, "bulk mode, server: stop writing after this many seconds (0: no limit)")
}

// earlyLine is what the -early write side sends on stream 00000000.
func earlyLine(side string) string { return "early from " + side + " 00000000\n" }

// early runs the -early exchange on one side; take gets stream 00000000.
func (c *common) runEarly(side, peer string, take func() (quic.Stream, error), conn func() quic.Connection) {
	switch c.early {
	case "write":
		s, err := take()
		if err != nil {
			fail("early write: take: %v", err)
		}
		if _, err := s.Write([]byte(earlyLine(side))); err != nil {
			fail("early write: %v", err)
		}
		s.Close() // FIN, as the reference's Close does
		fmt.Println("early: wrote and closed stream 00000000")
		select { // let the peer read it before the connection goes
		case <-conn().Context().Done():
		case <-time.After(c.linger):
		}
	case "read":
		time.Sleep(time.Second)
		s, err := take()
		if err != nil {
			fail("early read: take: %v", err)
		}
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(s)
		if err != nil {
			fail("early read: %v (after %q)", err, got)
		}
		if string(got) != earlyLine(peer) {
			fail("early read: got %q, want %q", got, earlyLine(peer))
		}
		fmt.Printf("early: read %d bytes, then EOF\n", len(got))
	default:
		fail("-early: write or read")
	}
	conn().CloseWithError(0, "pool closed")
}

func (c *common) start() {
	if c.streams < 0 || c.bytes < 0 || c.maxCap < 1 || c.ka <= 0 {
		fail("bad arguments")
	}
	if c.bulkBytes > 0 || c.bulkSecs > 0 {
		c.bulk = true
	}
	if c.bulkBytes < 0 || c.bulkSecs < 0 {
		fail("bad arguments")
	}
	time.AfterFunc(c.timeout, func() { fail("timeout after %v", c.timeout) })
}

// goByte is what the bulk client writes on the data stream once it has taken
// it; the server starts writing when it arrives.
const goByte = 'g'

// bulkServer: see "Bulk mode" at the top.
func (c *common) bulkServer(pool *serverPool) {
	if c.bulkBytes == 0 && c.bulkSecs == 0 {
		fail("-bulk on the server needs -bulk-bytes or -bulk-secs")
	}
	ctrl, err := pool.IncomingGet(c.timeout)
	if err != nil {
		fail("control stream: %v", err)
	}
	if ctrl.id != controlID {
		fail("first stream has ID %s, want %s", ctrl.id, controlID)
	}
	e, err := pool.IncomingGet(c.timeout)
	if err != nil {
		fail("IncomingGet: %v", err)
	}
	if _, err := ctrl.s.Write([]byte(e.id + "\n")); err != nil {
		fail("control stream write: %v", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(e.s, b[:]); err != nil || b[0] != goByte {
		fail("stream %s: no go byte from the client (%v)", e.id, err)
	}
	buf := make([]byte, 256<<10)
	start := time.Now()
	var sent int64
	for c.bulkBytes == 0 || sent < c.bulkBytes {
		if c.bulkSecs > 0 && time.Since(start).Seconds() >= c.bulkSecs {
			break
		}
		n := int64(len(buf))
		if c.bulkBytes > 0 && c.bulkBytes-sent < n {
			n = c.bulkBytes - sent
		}
		m, err := e.s.Write(buf[:n])
		sent += int64(m)
		if err != nil {
			fail("stream %s: write after %d bytes: %s", e.id, sent, describe(err))
		}
	}
	if err := e.s.Close(); err != nil {
		fail("stream %s: close: %v", e.id, err)
	}
	fmt.Printf("bulk sent %d bytes in %.3f s\n", sent, time.Since(start).Seconds())
	io.Copy(io.Discard, e.s) // the client's FIN after its go byte

	// Teardown as for np-test: the client half-closes 00000000 when done.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, ctrl.s); close(done) }()
	select {
	case <-done:
	case <-ctrl.conn.Context().Done():
	case <-time.After(c.timeout):
	}
	ctrl.s.Close()
	ctrl.conn.CloseWithError(0, "pool closed")
}

// bulkClient: see "Bulk mode" at the top.
func (c *common) bulkClient(pool *clientPool, conn quic.Connection) {
	deadline := time.Now().Add(c.timeout - time.Second)
	ctrl, err := pool.OutgoingGet(controlID, c.timeout)
	if err != nil {
		fail("control stream: %v", err)
	}
	lines := bufio.NewReader(ctrl)
	line, err := lines.ReadString('\n')
	if err != nil {
		fail("control stream read: %v", err)
	}
	id := line[:len(line)-1]
	s, err := pool.OutgoingGet(id, c.timeout)
	if err != nil {
		fail("OutgoingGet %s: %v", id, err)
	}
	if _, err := s.Write([]byte{goByte}); err != nil {
		fail("stream %s: go byte: %v", id, err)
	}
	s.Close()
	s.SetReadDeadline(deadline)
	buf := make([]byte, 256<<10)
	var got int64
	var first time.Time
	timedOut := false
	for {
		n, err := s.Read(buf)
		if n > 0 && got == 0 {
			first = time.Now()
		}
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				timedOut = true
				break
			}
			fail("stream %s: read after %d bytes: %s", id, got, describe(err))
		}
	}
	secs := 0.0
	if got > 0 {
		secs = time.Since(first).Seconds()
	}
	suffix := ""
	if timedOut {
		suffix = " timeout"
	}
	fmt.Printf("bulk bytes %d secs %.3f%s\n", got, secs, suffix)
	if timedOut {
		conn.CloseWithError(0, "bulk read timed out")
		return
	}

	ctrl.Close()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, lines); close(done) }()
	select {
	case <-done:
	case <-conn.Context().Done():
	case <-time.After(c.linger):
	}
	conn.CloseWithError(0, "pool closed")
}

func (c *common) success() {
	fmt.Printf("np-test: %d streams ok, %d bytes each way\n", c.streams, c.bytes)
}

func runServer(args []string) {
	var c common
	var listen, certFile, keyFile, clientIP string
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	c.register(fs)
	fs.StringVar(&listen, "listen", "", "UDP address to listen on")
	fs.StringVar(&certFile, "cert", "", "PEM certificate (default: self-signed)")
	fs.StringVar(&keyFile, "key", "", "PEM private key")
	fs.StringVar(&clientIP, "client-ip", "", "only accept connections from this IP")
	fs.Parse(args)
	c.start()
	var allowed net.IP
	if clientIP != "" {
		if allowed = net.ParseIP(clientIP); allowed == nil {
			fail("bad -client-ip %q", clientIP)
		}
	}

	var cert tls.Certificate
	if certFile != "" || keyFile != "" {
		var err error
		if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			fail("certificate: %v", err)
		}
	} else {
		cert = selfSignedCert()
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{c.alpn},
	}
	ln, err := quic.ListenAddr(listen, tlsConf, quicConfig(c.ka, c.maxCap))
	if err != nil {
		fail("listen %s: %v", listen, err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())

	pool := newServerPool(c.maxCap)
	var last quic.Connection
	var lastMu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			peer, _ := conn.RemoteAddr().(*net.UDPAddr)
			if allowed != nil && (peer == nil || !peer.IP.Equal(allowed)) {
				logf("rejecting %v", conn.RemoteAddr())
				conn.CloseWithError(0, "unauthorized IP")
				continue
			}
			cs := conn.ConnectionState().TLS
			logf("connection from %v, %s, ALPN %s", conn.RemoteAddr(),
				tls.CipherSuiteName(cs.CipherSuite), cs.NegotiatedProtocol)
			lastMu.Lock()
			last = conn
			lastMu.Unlock()
			go pool.serveConn(conn)
		}
	}()
	if c.early != "" {
		var e pooled
		c.runEarly("server", "client", func() (quic.Stream, error) {
			var err error
			if e, err = pool.IncomingGet(c.timeout); err == nil && e.id != controlID {
				err = fmt.Errorf("took %s, want %s", e.id, controlID)
			}
			return e.s, err
		}, func() quic.Connection { lastMu.Lock(); defer lastMu.Unlock(); return last })
		ln.Close()
		return
	}
	if c.bulk {
		c.bulkServer(pool)
		ln.Close()
		return
	}

	ctrl, err := pool.IncomingGet(c.timeout)
	if err != nil {
		fail("control stream: %v", err)
	}
	if ctrl.id != controlID {
		fail("first stream has ID %s, want %s", ctrl.id, controlID)
	}
	results := make(chan error, c.streams)
	for i := 0; i < c.streams; i++ {
		e, err := pool.IncomingGet(c.timeout)
		if err != nil {
			fail("IncomingGet %d: %v", i+1, err)
		}
		if _, err := ctrl.s.Write([]byte(e.id + "\n")); err != nil {
			fail("control stream write: %v", err)
		}
		go func(e pooled) {
			err := transfer(e.s, e.id, c.bytes, 'S', 'C')
			if err != nil {
				err = fmt.Errorf("stream %s: %v", e.id, err)
			}
			results <- err
		}(e)
	}
	collect(results, c.streams)
	c.success()

	// Teardown: the client half-closes the control stream once it has all our
	// data; wait for that (or for it to close the connection), then close.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, ctrl.s); close(done) }()
	select {
	case <-done:
	case <-ctrl.conn.Context().Done():
	case <-time.After(c.linger):
	}
	ctrl.s.Close()
	ctrl.conn.CloseWithError(0, "pool closed")
	ln.Close()
}

func runClient(args []string) {
	var c common
	var target string
	var minCap int
	var insecure bool
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	c.register(fs)
	fs.StringVar(&target, "target", "", "server UDP address")
	fs.IntVar(&minCap, "min-cap", 1, "accepted for CLI symmetry; max-cap idle streams are kept")
	fs.BoolVar(&insecure, "insecure", true, "do not verify the server certificate")
	fs.Parse(args)
	c.start()

	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{c.alpn},
		InsecureSkipVerify: insecure,
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	conn, err := quic.DialAddrContext(ctx, target, tlsConf, quicConfig(c.ka, c.maxCap))
	if err != nil {
		fail("dial %s: %s", target, describe(err))
	}
	cs := conn.ConnectionState().TLS
	logf("connected to %s, %s, ALPN %s", target,
		tls.CipherSuiteName(cs.CipherSuite), cs.NegotiatedProtocol)

	pool := newClientPool(conn, c.maxCap)
	if c.early != "" {
		c.runEarly("client", "server", func() (quic.Stream, error) {
			return pool.OutgoingGet(controlID, c.timeout)
		}, func() quic.Connection { return conn })
		return
	}
	if c.bulk {
		c.bulkClient(pool, conn)
		return
	}
	ctrl, err := pool.OutgoingGet(controlID, c.timeout)
	if err != nil {
		fail("control stream: %v", err)
	}
	lines := bufio.NewReader(ctrl)
	results := make(chan error, c.streams)
	for i := 0; i < c.streams; i++ {
		line, err := lines.ReadString('\n')
		if err != nil {
			fail("control stream read %d: %v", i+1, err)
		}
		id := line[:len(line)-1]
		if raw, err := hex.DecodeString(id); err != nil || len(raw) != 4 || hex.EncodeToString(raw) != id {
			fail("bad control line %q", line)
		}
		s, err := pool.OutgoingGet(id, c.timeout)
		if err != nil {
			fail("OutgoingGet %s: %v", id, err)
		}
		go func(id string) {
			err := transfer(s, id, c.bytes, 'C', 'S')
			if err != nil {
				err = fmt.Errorf("stream %s: %v", id, err)
			}
			results <- err
		}(id)
	}
	collect(results, c.streams)
	c.success()

	// Teardown: tell the server we have everything (FIN on the control
	// stream), let it close the connection, then close it ourselves.
	ctrl.Close()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, lines); close(done) }()
	select {
	case <-done:
	case <-conn.Context().Done():
	case <-time.After(c.linger):
	}
	conn.CloseWithError(0, "pool closed")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nppeer server|client [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		runServer(os.Args[2:])
	case "client":
		runClient(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: nppeer server|client [flags]")
		os.Exit(2)
	}
}
