// Package userv1 is the user service's gRPC contract, generated from
// user.proto by protoc-gen-go and protoc-gen-micro (`make generate`): the
// messages, and the go-micro client and handler of the nine RPCs.
package userv1
