package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"go-micro.dev/v6/logger"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"
)

// UseLogger sends go-micro's own log lines (server start, registration,
// deregistration) and the etcd client's through log, so every line of the process is one JSON
// format with the same fields. go-micro keeps its logger in a package
// variable, so this is process-wide; call it once at start-up.
func UseLogger(log *slog.Logger) {
	logger.DefaultLogger = &microLogger{log: log.With("log.logger", "go-micro")}
	logger.DefaultHelper = logger.NewHelper(logger.DefaultLogger)
	etcdLog.Store(log.With("log.logger", "etcd-client"))
	grpcLog.Store(log.With("log.logger", "grpc"))
}

// grpcLog is where gRPC's own log lines go (set by UseLogger).
var grpcLog atomic.Pointer[slog.Logger]

func init() {
	// gRPC's logger may only be replaced before any gRPC activity, hence
	// here; it reads grpcLog at each line.
	grpclog.SetLoggerV2(grpcLogger{})
}

// grpcLogger adapts slog to gRPC's logger, which otherwise writes its own
// plain-text lines to stderr. It keeps gRPC's default severity: errors
// only (its warnings are every failed reconnect, many a second in an
// outage, which the callers already report once, in context).
type grpcLogger struct{}

func (grpcLogger) log(msg string) {
	log := grpcLog.Load()
	if log == nil {
		log = slog.Default().With("log.logger", "grpc")
	}
	log.Error(msg)
}

func (grpcLogger) Info(...any)                    {}
func (grpcLogger) Infoln(...any)                  {}
func (grpcLogger) Infof(string, ...any)           {}
func (grpcLogger) Warning(...any)                 {}
func (grpcLogger) Warningln(...any)               {}
func (grpcLogger) Warningf(string, ...any)        {}
func (g grpcLogger) Error(args ...any)            { g.log(fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any)          { g.log(strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }
func (g grpcLogger) Errorf(f string, args ...any) { g.log(fmt.Sprintf(f, args...)) }
func (g grpcLogger) Fatal(args ...any)            { g.log(fmt.Sprint(args...)); os.Exit(1) }
func (g grpcLogger) Fatalln(args ...any)          { g.Fatal(args...) }
func (g grpcLogger) Fatalf(f string, args ...any) { g.log(fmt.Sprintf(f, args...)); os.Exit(1) }
func (grpcLogger) V(int) bool                     { return false }

// microLogger adapts slog to go-micro's Logger interface.
type microLogger struct {
	log  *slog.Logger
	opts logger.Options
}

func (m *microLogger) Init(opts ...logger.Option) error {
	for _, o := range opts {
		o(&m.opts)
	}
	return nil
}

func (m *microLogger) Options() logger.Options { return m.opts }

func (m *microLogger) Fields(fields map[string]interface{}) logger.Logger {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	return &microLogger{log: m.log.With(args...), opts: m.opts}
}

func (m *microLogger) Log(level logger.Level, v ...interface{}) {
	m.emit(level, fmt.Sprint(v...))
}

func (m *microLogger) Logf(level logger.Level, format string, v ...interface{}) {
	m.emit(level, fmt.Sprintf(format, v...))
}

func (m *microLogger) emit(level logger.Level, msg string) {
	m.log.Log(context.Background(), level.ToSlog(), msg)
	if level == logger.FatalLevel {
		os.Exit(1)
	}
}

func (m *microLogger) String() string { return "slog" }

// etcdLog is where the etcd client's own log lines go (set by UseLogger);
// the client logs through zap, which can only be given a configuration, so
// its JSON lines are decoded by a zap sink and logged again through slog.
var etcdLog atomic.Pointer[slog.Logger]

const etcdSinkScheme = "usersvc-etcd"

func init() {
	// Registered once per process; the sink reads etcdLog at each write.
	if err := zap.RegisterSink(etcdSinkScheme, func(*url.URL) (zap.Sink, error) { return etcdSink{}, nil }); err != nil {
		panic(err)
	}
}

// etcdLogConfig is the zap configuration of the etcd client: JSON to the
// sink above, info and up.
func etcdLogConfig() *zap.Config {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	cfg.Sampling = nil
	cfg.OutputPaths = []string{etcdSinkScheme + ":"}
	cfg.ErrorOutputPaths = []string{etcdSinkScheme + ":"}
	return &cfg
}

// etcdSink re-logs zap's JSON lines through slog, with their message,
// level and fields.
type etcdSink struct{}

func (etcdSink) Write(p []byte) (int, error) {
	log := etcdLog.Load()
	if log == nil {
		log = slog.Default().With("log.logger", "etcd-client")
	}
	var fields map[string]any
	if json.Unmarshal(p, &fields) != nil {
		log.Warn(strings.TrimSpace(string(p)))
		return len(p), nil
	}
	msg, _ := fields["msg"].(string)
	level := slog.LevelInfo
	switch fields["level"] {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error", "dpanic", "panic", "fatal":
		level = slog.LevelError
	}
	attrs := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		switch k {
		case "msg", "level", "ts", "caller", "logger":
		default:
			attrs = append(attrs, "etcd."+k, v)
		}
	}
	log.Log(context.Background(), level, msg, attrs...)
	return len(p), nil
}

func (etcdSink) Sync() error  { return nil }
func (etcdSink) Close() error { return nil }
