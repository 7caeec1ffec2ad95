import type { Connection } from 'mongoose';
import type { Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import { salesHandlers } from './events';
import { createSalesModels } from './model';
import { salesResolvers } from './resolvers';
import { createSalesService, type SalesService } from './service';

export function createSalesModule(deps: { db: Connection; models: Models; now: () => Date; logger: Logger }): LiveModule & {
  sales: SalesService;
} {
  const models = createSalesModels(deps.db);
  const sales = createSalesService({ models, core: deps.models, now: deps.now, logger: deps.logger });
  return { name: 'sales', sales, resolvers: salesResolvers, on: salesHandlers(sales) };
}
