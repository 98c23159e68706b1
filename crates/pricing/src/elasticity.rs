//! Price elasticity of demand from sales history (being written).
