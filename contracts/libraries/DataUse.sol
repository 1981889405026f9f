// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title DataUse
/// @notice Purposes of use as a 64-bit mask built on the GA4GH Data Use Ontology (DUO).
///
/// A *consent* (or an approval) carries permission bits and modifier bits:
/// - permissions (bits 0-7): NRES no restriction (DUO:0000004), GRU general research use
///   (DUO:0000042), HMB health/medical/biomedical research (DUO:0000006), DS disease-specific
///   research (DUO:0000007, with a disease code), POA population origins or ancestry research
///   (DUO:0000011);
/// - modifiers (bits 16-23): NCU no commercial use (DUO:0000046), NPU not-for-profit use only
///   (DUO:0000045), IRB ethics approval required (DUO:0000021), PUB publication required
///   (DUO:0000019), GSO genetic studies only (DUO:0000016), COL collaboration required
///   (DUO:0000020), RTN return to database (DUO:0000029), NMDS no general methods research
///   (DUO:0000015).
///
/// A *use* (or a request) names exactly one research category in bits 0-7 (GRU for research that
/// is neither health- nor ancestry-specific, HMB, DS with a disease code, or POA) and declares its
/// attributes in bits 32-39: commercial, for-profit, ethics-approved, will publish, genetic study,
/// in collaboration, will return results, methods research.
///
/// Coverage: NRES covers every use; GRU covers GRU, HMB, DS and POA; HMB covers HMB and DS; DS
/// covers DS for the same disease code; POA covers POA. Then every modifier of the consent must be
/// satisfied by the use's attributes. Disease codes are numeric MONDO identifiers.
library DataUse {
    uint64 internal constant NRES = 1 << 0;
    uint64 internal constant GRU = 1 << 1;
    uint64 internal constant HMB = 1 << 2;
    uint64 internal constant DS = 1 << 3;
    uint64 internal constant POA = 1 << 4;
    uint64 internal constant PERMISSIONS = 0xFF;

    uint64 internal constant NCU = 1 << 16;
    uint64 internal constant NPU = 1 << 17;
    uint64 internal constant IRB = 1 << 18;
    uint64 internal constant PUB = 1 << 19;
    uint64 internal constant GSO = 1 << 20;
    uint64 internal constant COL = 1 << 21;
    uint64 internal constant RTN = 1 << 22;
    uint64 internal constant NMDS = 1 << 23;
    uint64 internal constant MODIFIERS = 0xFF << 16;

    uint64 internal constant USE_COMMERCIAL = 1 << 32;
    uint64 internal constant USE_FOR_PROFIT = 1 << 33;
    uint64 internal constant USE_ETHICS_APPROVED = 1 << 34;
    uint64 internal constant USE_PUBLISHES = 1 << 35;
    uint64 internal constant USE_GENETIC = 1 << 36;
    uint64 internal constant USE_COLLABORATION = 1 << 37;
    uint64 internal constant USE_RETURNS_RESULTS = 1 << 38;
    uint64 internal constant USE_METHODS = 1 << 39;
    uint64 internal constant USE_ATTRIBUTES = 0xFF << 32;

    /// @notice Whether `grant` is a well-formed consent mask: at least one permission, only known
    /// bits, and a disease code exactly when DS is granted.
    function isValidGrant(uint64 grant, uint32 disease) internal pure returns (bool) {
        if (grant & PERMISSIONS == 0) return false;
        if (grant & ~(PERMISSIONS | MODIFIERS) != 0) return false;
        if (grant & (PERMISSIONS & ~(NRES | GRU | HMB | DS | POA)) != 0) return false;
        return (grant & DS != 0) == (disease != 0);
    }

    /// @notice Whether `use` is a well-formed use: exactly one research category (not NRES), only
    /// known bits, and a disease code exactly when the category is DS.
    function isValidUse(uint64 use, uint32 disease) internal pure returns (bool) {
        uint64 category = use & PERMISSIONS;
        if (category != GRU && category != HMB && category != DS && category != POA) return false;
        if (use & ~(PERMISSIONS | USE_ATTRIBUTES) != 0) return false;
        return (category == DS) == (disease != 0);
    }

    /// @notice Whether a consent (`grant`, `grantDisease`) covers a use (`use`, `useDisease`).
    function covers(uint64 grant, uint32 grantDisease, uint64 use, uint32 useDisease) internal pure returns (bool) {
        uint64 category = use & PERMISSIONS;
        bool permitted;
        if (grant & (NRES | GRU) != 0) {
            permitted = true;
        } else if (category == HMB) {
            permitted = grant & HMB != 0;
        } else if (category == DS) {
            permitted = grant & HMB != 0 || (grant & DS != 0 && grantDisease == useDisease);
        } else if (category == POA) {
            permitted = grant & POA != 0;
        }
        if (!permitted) return false;
        if (grant & MODIFIERS == 0) return true;
        if (grant & NCU != 0 && use & USE_COMMERCIAL != 0) return false;
        if (grant & NPU != 0 && use & USE_FOR_PROFIT != 0) return false;
        if (grant & IRB != 0 && use & USE_ETHICS_APPROVED == 0) return false;
        if (grant & PUB != 0 && use & USE_PUBLISHES == 0) return false;
        if (grant & GSO != 0 && use & USE_GENETIC == 0) return false;
        if (grant & COL != 0 && use & USE_COLLABORATION == 0) return false;
        if (grant & RTN != 0 && use & USE_RETURNS_RESULTS == 0) return false;
        if (grant & NMDS != 0 && use & USE_METHODS != 0) return false;
        return true;
    }

    /// @notice Whether a use stays within an approved request: its category is the request's or
    /// narrower (HMB to DS; GRU to any), the disease matches where DS, and its attributes are the
    /// request's exactly (the reviewer approved those).
    function withinApproved(uint64 approved, uint32 approvedDisease, uint64 use, uint32 useDisease)
        internal
        pure
        returns (bool)
    {
        if (approved & USE_ATTRIBUTES != use & USE_ATTRIBUTES) return false;
        return covers(approved & PERMISSIONS, approvedDisease, use, useDisease);
    }
}
