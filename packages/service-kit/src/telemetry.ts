// Loaded before anything else in every process (first import of main.ts), so the HTTP module is
// instrumented before Apollo, mongoose or NATS load it. OTEL_* variables are read by the SDK itself.
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

const disabled = process.env.OTEL_SDK_DISABLED === 'true';
const exporting = Boolean(process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);

let sdk: NodeSDK | undefined;
if (!disabled) {
  sdk = new NodeSDK({
    // Without a collector, spans are still created (trace ids in logs, context across NATS)
    // but not exported anywhere.
    ...(exporting ? { traceExporter: new OTLPTraceExporter() } : { spanProcessors: [] }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => req.url === '/healthz' || req.url === '/readyz',
      }),
    ],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
}

/** Flushes and stops tracing; called last during shutdown. */
export async function shutdownTelemetry(): Promise<void> {
  await sdk?.shutdown().catch(() => undefined);
}
