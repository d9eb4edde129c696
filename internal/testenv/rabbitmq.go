package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RabbitMQURL returns the AMQP URL of the test broker,
// USERSVC_TEST_RABBITMQ_URL (e.g. "amqp://guest:guest@127.0.0.1:5672/"),
// or skips the test (fails it under USERSVC_TEST_REQUIRE_ALL=1). The broker
// is shared: tests must use queue names of their own (RandomHex) and delete
// them when done.
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	return Need(t, "USERSVC_TEST_RABBITMQ_URL")
}

// RabbitMQCtl runs `rabbitmqctl args...` on this machine, e.g. "stop_app"
// and "start_app" to simulate a broker outage, and fails the test if the
// command fails. Stopping a broker that other test packages may be using
// must be asked for, so unless USERSVC_TEST_RABBITMQ_CTL=1 the calling test
// skips (fails under USERSVC_TEST_REQUIRE_ALL=1). Call it early, e.g. with
// "await_startup", so the test skips before it has done anything.
func RabbitMQCtl(t testing.TB, args ...string) {
	t.Helper()
	const env = "USERSVC_TEST_RABBITMQ_CTL"
	if os.Getenv(env) != "1" {
		if os.Getenv("USERSVC_TEST_REQUIRE_ALL") == "1" {
			t.Fatalf("%s is not 1 but USERSVC_TEST_REQUIRE_ALL=1: run the tests with `make test`", env)
		}
		t.Skipf("%s is not 1; set it to let tests stop and start the local RabbitMQ with rabbitmqctl", env)
	}
	// Generous: await_startup waits for the whole broker to boot.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
