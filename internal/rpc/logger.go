package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go-micro.dev/v6/logger"
)

// UseLogger sends go-micro's own log lines (server start, registration,
// deregistration) through log, so every line of the process is one JSON
// format with the same fields. go-micro keeps its logger in a package
// variable, so this is process-wide; call it once at start-up.
func UseLogger(log *slog.Logger) {
	logger.DefaultLogger = &microLogger{log: log.With("log.logger", "go-micro")}
	logger.DefaultHelper = logger.NewHelper(logger.DefaultLogger)
}

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
