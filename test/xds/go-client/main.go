// sibyl-xds-client: a proxyless grpc-go client for sibyl's xDS tests. grpc-go is the strictest xDS
// client there is, so every resource sibyl's ADS server makes must pass it.
//
// It dials --target (xds:///NAME) with the bootstrap named by GRPC_XDS_BOOTSTRAP or given inline in
// GRPC_XDS_BOOTSTRAP_CONFIG, and calls sibyl.demo.v1.Demo/Echo. The backend that served each call is
// read from the x-sibyl-backend response header. Commands arrive on stdin, one JSON object a line;
// results go to stdout, one JSON object a line:
//
//	{"op":"batch","calls":N,"concurrency":C,"rate":R}  N calls, C at a time, at most R/s (0: no limit)
//	  -> {"op":"batch","calls":N,"backends":{"b0":n,...},"errors":{"14":n,...},"lastError":"..."}
//	{"op":"trace","rate":R}  calls at R/s until "stop"; each one -> {"op":"call","at":UNIX_MS,"backend":"b0","code":0}
//	{"op":"stop"}  -> {"op":"stopped"}
//	{"op":"load","rate":R,"seconds":S}  open loop: call i starts at i/R s whatever the calls before it
//	  are doing, for S s; when all have ended -> {"op":"load","sent":N,"seconds":ELAPSED,
//	  "latencyUs":[...],"codes":[...]} (each call's latency and status code, in the order they started)
//
// It exits when stdin closes.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends and receives message bytes as they are, so no generated code is needed: the
// request is an EchoRequest encoded by hand, the response is not decoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type command struct {
	Op          string  `json:"op"`
	Calls       int     `json:"calls"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"`
	Seconds     float64 `json:"seconds"`
}

type client struct {
	conn    *grpc.ClientConn
	method  string
	request []byte
	timeout time.Duration
	out     *json.Encoder
	outMu   sync.Mutex
}

func (c *client) print(v any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	_ = c.out.Encode(v)
}

// call makes one call and says which backend served it and the status code.
func (c *client) call() (string, int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var header metadata.MD
	req, resp := c.request, []byte(nil)
	err := c.conn.Invoke(ctx, c.method, &req, &resp, grpc.Header(&header), grpc.ForceCodec(rawCodec{}))
	backend := ""
	if v := header.Get("x-sibyl-backend"); len(v) > 0 {
		backend = v[0]
	}
	if err != nil {
		s := status.Convert(err)
		return backend, int(s.Code()), s.Message()
	}
	return backend, 0, ""
}

// pace returns a function that waits for the next slot of a rate limit (no wait when rate <= 0).
func pace(rate float64) func() {
	if rate <= 0 {
		return func() {}
	}
	var mu sync.Mutex
	next := time.Now()
	every := time.Duration(float64(time.Second) / rate)
	return func() {
		mu.Lock()
		at := next
		next = next.Add(every)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		mu.Unlock()
		time.Sleep(time.Until(at))
	}
}

func (c *client) batch(cmd command) {
	n, workers := cmd.Calls, max(cmd.Concurrency, 1)
	wait := pace(cmd.Rate)
	backends, errors := map[string]int{}, map[string]int{}
	lastError := ""
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				wait()
				backend, code, msg := c.call()
				mu.Lock()
				if code == 0 {
					backends[backend]++
				} else {
					errors[fmt.Sprint(code)]++
					lastError = msg
				}
				mu.Unlock()
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	c.print(map[string]any{"op": "batch", "calls": n, "backends": backends, "errors": errors, "lastError": lastError})
}

// trace calls at a steady rate until stop closes, printing each call as it ends.
func (c *client) trace(rate float64, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	tick := time.NewTicker(time.Duration(float64(time.Second) / max(rate, 1)))
	defer tick.Stop()
	var calls sync.WaitGroup
	defer calls.Wait()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			calls.Add(1)
			go func() {
				defer calls.Done()
				backend, code, msg := c.call()
				c.print(map[string]any{"op": "call", "at": time.Now().UnixMilli(), "backend": backend, "code": code, "error": msg})
			}()
		}
	}
}

// load is an open-loop load for latency benchmarks (sibyl bench proxy): calls start on a fixed
// schedule, each in its own goroutine, so a slow call delays none after it (no coordinated omission).
// Each latency is from the call's start to its end, as ghz measures.
func (c *client) load(cmd command) {
	n := int(cmd.Rate * cmd.Seconds)
	if cmd.Rate <= 0 || n <= 0 {
		c.print(map[string]any{"op": "error", "error": "load needs rate > 0 and seconds > 0"})
		return
	}
	every := time.Duration(float64(time.Second) / cmd.Rate)
	latency, codes := make([]int64, n), make([]int, n)
	var calls sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * every)))
		calls.Add(1)
		go func() {
			defer calls.Done()
			start := time.Now()
			_, code, _ := c.call()
			latency[i], codes[i] = time.Since(start).Microseconds(), code
		}()
	}
	calls.Wait()
	c.print(map[string]any{"op": "load", "sent": n, "seconds": time.Since(t0).Seconds(), "latencyUs": latency, "codes": codes})
}

func main() {
	target := flag.String("target", "", "xds:///NAME")
	method := flag.String("method", "/sibyl.demo.v1.Demo/Echo", "full method name")
	latencyMs := flag.Uint64("latency-ms", 0, "EchoRequest.latency_ms: the backend's service time per call (0: its own)")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of each call")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "usage: sibyl-xds-client --target xds:///NAME [--method M] [--latency-ms MS] [--timeout D]")
		os.Exit(2)
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial %s: %v\n", *target, err)
		os.Exit(1)
	}
	defer conn.Close()
	var request []byte // EchoRequest{latency_ms: 3}; empty when 0, which is a valid EchoRequest
	if *latencyMs > 0 {
		request = protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), *latencyMs)
	}
	c := &client{conn: conn, method: *method, request: request, timeout: *timeout, out: json.NewEncoder(os.Stdout)}
	c.print(map[string]any{"op": "started", "target": *target})

	var stop chan struct{}
	var tracing sync.WaitGroup
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		var cmd command
		if err := json.Unmarshal(lines.Bytes(), &cmd); err != nil {
			c.print(map[string]any{"op": "error", "error": err.Error()})
			continue
		}
		switch cmd.Op {
		case "batch":
			c.batch(cmd)
		case "load":
			c.load(cmd)
		case "trace":
			if stop == nil {
				stop = make(chan struct{})
				tracing.Add(1)
				go c.trace(cmd.Rate, stop, &tracing)
			}
		case "stop":
			if stop != nil {
				close(stop)
				tracing.Wait()
				stop = nil
			}
			c.print(map[string]any{"op": "stopped"})
		default:
			c.print(map[string]any{"op": "error", "error": "unknown op " + cmd.Op})
		}
	}
	if stop != nil {
		close(stop)
		tracing.Wait()
	}
}
