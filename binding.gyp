{
  "targets": [
    {
      "target_name": "sonde_bpf",
      "type": "none",
      "actions": [
        {
          "action_name": "build_bpf_skeleton",
          "inputs": ["bpf/sock_trace.bpf.c", "bpf/shared/events.h", "bpf/lib/sock.bpf.h", "bpf/Makefile"],
          "outputs": ["bpf/.output/sock_trace.skel.h"],
          "action": ["make", "-s", "-C", "bpf"]
        }
      ]
    },
    {
      "target_name": "sonde_native",
      "dependencies": ["sonde_bpf"],
      "sources": [
        "native/src/core/ConnTracker.cc",
        "native/src/core/ConnectionTable.cc",
        "native/src/core/Http1Stitcher.cc",
        "native/src/core/Http2Stitcher.cc",
        "native/src/core/RecordWriter.cc",
        "native/src/core/TraceLinker.cc",
        "native/src/core/Traceparent.cc",
        "native/src/core/Http1Framing.cc",
        "native/src/core/BpfTracer.cc",
        "native/src/core/UprobeSite.cc",
        "native/src/core/TlsProbePlan.cc",
        "native/src/core/layout_check.cc",
        "native/src/core/http2/FrameReader.cc",
        "native/src/core/http2/HpackDecoder.cc",
        "native/src/encode/EncodedSpans.cc",
        "native/src/encode/GrpcSpans.cc",
        "native/src/encode/Http1Spans.cc",
        "native/src/encode/Http2Fields.cc",
        "native/src/encode/Http2Spans.cc",
        "native/src/encode/SpanWriter.cc",
        "native/src/discovery/ListeningSockets.cc",
        "native/src/binding/http2TestHook.cc",
        "native/src/binding/addon.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf/.output",
        "bpf"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lbpf", "-lelf", "-lz", "-lnghttp2"]
    }
  ]
}
