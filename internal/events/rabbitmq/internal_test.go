package rabbitmq

import (
	"strings"
	"testing"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestAttemptOf(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{nil, 1}, {"3", 1}, {int32(0), 1}, {int32(-2), 1},
		{int8(2), 2}, {int16(3), 3}, {int32(4), 4}, {int64(5), 5}, {6, 6}, {uint8(7), 7}, {uint32(8), 8},
	} {
		h := amqp.Table{}
		if tc.v != nil {
			h[headerAttempt] = tc.v
		}
		if got := attemptOf(h); got != tc.want {
			t.Errorf("attemptOf(%T %v) = %d, want %d", tc.v, tc.v, got, tc.want)
		}
	}
}

func TestRoutingKey(t *testing.T) {
	direct := amqp.Delivery{RoutingKey: "user.created"}
	retried := amqp.Delivery{RoutingKey: "usersvc.mailer", Headers: amqp.Table{headerRoutingKey: "user.created"}}
	for _, d := range []amqp.Delivery{direct, retried} {
		if got := routingKey(d); got != "user.created" {
			t.Errorf("routingKey(%+v) = %q", d, got)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("short", 10); got != "short" {
		t.Errorf("truncate kept %q", got)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	got := truncate(long, maxErrorLen)
	if !utf8.ValidString(got) || len(got) > maxErrorLen+len("…") {
		t.Errorf("truncate gave %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}
