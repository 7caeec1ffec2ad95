import type { Resolvers } from '../__generated__/resolvers';
import type { AddressService } from './service';

export function addressResolvers(addresses: AddressService): Resolvers {
  return {
    Mutation: {
      addAddress: async (_, { input }, { viewer }) => ({ address: await addresses.add(viewer, input) }),
      updateAddress: async (_, { input }, { viewer }) => ({ address: await addresses.update(viewer, input) }),
      removeAddress: (_, { input }, { viewer }) => addresses.remove(viewer, input.addressId),
      setDefaultAddress: async (_, { input }, { viewer }) => ({ address: await addresses.setDefault(viewer, input.addressId) }),
    },
    Member: {
      addresses: (m, _, { viewer }) => addresses.addressesOf(viewer, m._id.toHexString()),
      defaultAddress: (m, _, { viewer }) => addresses.defaultAddressOf(viewer, m._id.toHexString()),
    },
  };
}
