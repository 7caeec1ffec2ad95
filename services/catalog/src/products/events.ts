import type { Bus } from '@flywheel/service-kit';
import type { ProductService } from './service';

/** Orders prices every line here (request/reply, one queue group per service). */
export function registerProductEvents(bus: Bus, products: ProductService): void {
  bus.reply('catalog.price.quote', (request) => products.quote(request));
}
