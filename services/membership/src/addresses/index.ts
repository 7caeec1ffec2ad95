import { piiCipherKey } from '@flywheel/service-kit';
import type { MembershipModule, ModuleDeps } from '../modules';
import { addressHandlers, replyToCheckouts } from './events';
import { createAddressModels } from './model';
import { addressResolvers } from './resolvers';
import { createAddressService, type AddressService } from './service';

export { MAX_ADDRESSES, type AddressService, type AddressView } from './service';

/**
 * Shipping addresses (地址管理): the member's book, its default, the snapshot checkout asks for
 * (`membership.address.snapshot`) and erasure on `membership.member.erased`.
 */
export function createAddressesModule(deps: ModuleDeps & { piiEncryptionKey: string }): MembershipModule & { addresses: AddressService } {
  const addresses = createAddressService({
    models: createAddressModels(deps.db),
    pii: piiCipherKey(deps.piiEncryptionKey),
    now: deps.now,
  });
  return {
    name: 'addresses',
    addresses,
    resolvers: addressResolvers(addresses),
    init: async () => replyToCheckouts(deps.bus, addresses),
    on: addressHandlers(addresses),
  };
}
