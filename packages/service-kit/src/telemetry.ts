// Loaded before anything else in every process (first import of main.ts), so node:http is
// instrumented before Apollo, mongoose or NATS load it. undici (the gateway's subgraph client,
// and Node's fetch) bypasses node:http: its own instrumentation carries the trace context on
// its requests. Only the tracing parts of the SDK are loaded: @opentelemetry/sdk-node pulls in
// every exporter (gRPC, metrics, logs) and cost each process ~30 MiB and ~0.4 s at start
// (bench/startup.js). OTEL_* variables configure it.
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider as TracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

const disabled = process.env.OTEL_SDK_DISABLED === 'true';
const exporting = Boolean(process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);

/**
 * A request that already names its trace (a test or a client starting one) keeps it: undici's
 * instrumentation would append a second traceparent, and a receiver ignores both.
 */
const carriesTraceContext = ({ headers }: { headers: string | (string | string[])[] }): boolean =>
  typeof headers === 'string'
    ? /(^|\r\n)traceparent:/i.test(headers)
    : headers.some((h, i) => i % 2 === 0 && typeof h === 'string' && h.toLowerCase() === 'traceparent');

let provider: TracerProvider | undefined;
if (!disabled) {
  // Without a collector, spans are still created (trace ids in logs, context across NATS) but
  // not exported; the OTLP exporter is loaded only when an endpoint is configured.
  const spanProcessors = exporting
    ? [
        new BatchSpanProcessor(
          new (
            require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')
          ).OTLPTraceExporter() as SpanExporter,
          { scheduledDelayMillis: Number(process.env.OTEL_BSP_SCHEDULE_DELAY ?? 5_000) },
        ),
      ]
    : [];
  provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME ?? 'flywheel' }),
    spanProcessors,
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => req.url === '/healthz' || req.url === '/readyz',
      }),
      new UndiciInstrumentation({ ignoreRequestHook: carriesTraceContext }),
    ],
  });
}

/** Flushes and stops tracing; called last during shutdown. */
export async function shutdownTelemetry(): Promise<void> {
  await provider?.shutdown().catch(() => undefined);
}
