import type * as grpc from '@grpc/grpc-js';
import type { Gauge } from 'prom-client';
import type { OrcaReport } from '../../grpc/orca.js';
import type { LoadSampler } from './orca.js';

/** A client may ask for reports this often at most (grpc-go's MinReportingInterval, lowered for tests). */
const MIN_INTERVAL_MS = 100;
/** The interval when the request names none (grpc-js's ServerMetricRecorder default). */
const DEFAULT_INTERVAL_MS = 30_000;

/**
 * The backend's OpenRcaService (gRFC A51, out-of-band ORCA): the same figures as its per-call trailer
 * (CPU, memory, the share of busy slots as application utilisation), one report at once and then one
 * every interval the client asks for, until it cancels. grpc-js 1.14's ServerMetricRecorder serves
 * this too, but only figures pushed into it beforehand and no memory utilisation; this reads them
 * when each report is due.
 */
export function orcaService(
  load: LoadSampler,
  busyShare: () => number,
  open?: Gauge,
): grpc.UntypedServiceImplementation {
  return {
    StreamCoreMetrics(call: grpc.ServerWritableStream<{ intervalMs?: number }, OrcaReport>) {
      const every = Math.max(MIN_INTERVAL_MS, call.request.intervalMs ?? DEFAULT_INTERVAL_MS);
      const report = () =>
        call.write({
          cpuUtilization: load.cpu(),
          memUtilization: load.memory(),
          applicationUtilization: busyShare(),
        });
      report();
      const timer = setInterval(report, every);
      open?.inc();
      let stopped = false;
      const stop = () => {
        clearInterval(timer);
        if (!stopped) open?.dec();
        stopped = true;
      };
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
}
