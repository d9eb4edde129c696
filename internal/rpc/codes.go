package rpc

import (
	merrors "go-micro.dev/v6/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/usersvc/usersvc/internal/user"
)

// grpcCodes corrects the two gRPC codes go-micro's server gets wrong for
// us. It knows no gRPC code for 429, so a refusal past a rate limit left
// as Unknown and a client could not tell "slow down" from a fault; and it
// answers a request body that does not decode as Internal, blaming itself
// for the client's bytes. The error's details (the go-micro error our
// clients decode) are kept, so FromMicro sees the same answer as before.
// It is a stream interceptor because go-micro serves every method through
// gRPC's unknown-service handler, which only stream interceptors wrap.
func grpcCodes(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, decodeErrors{ss})
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unknown {
		return err
	}
	for _, d := range st.Details() {
		if me, ok := d.(*merrors.Error); ok && me.Id == string(user.CodeResourceExhausted) {
			p := st.Proto()
			p.Code = int32(codes.ResourceExhausted)
			return status.FromProto(p).Err()
		}
	}
	return err
}

// decodeErrors decodes each request message itself, so one that does not
// decode is InvalidArgument. gRPC would answer Internal, and it writes that
// status the moment its own decoding fails, before any handler or
// interceptor could correct it; so the server's codec (protoCodec) hands
// request bytes over undecoded.
type decodeErrors struct{ grpc.ServerStream }

func (s decodeErrors) RecvMsg(m any) error {
	var raw rawMessage
	if err := s.ServerStream.RecvMsg(&raw); err != nil {
		return err
	}
	pm, ok := m.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "rpc: cannot decode into %T", m)
	}
	if err := proto.Unmarshal(raw, pm); err != nil {
		return status.Errorf(codes.InvalidArgument, "malformed request message: %v", err)
	}
	return nil
}

// rawMessage is a request message's bytes, decoded by decodeErrors; the
// server's codec (protoCodec) hands them over as they came.
type rawMessage []byte
