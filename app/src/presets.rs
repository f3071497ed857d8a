//! Saved system prompts with sampling settings, chosen per conversation. A
//! conversation without one uses the model's settings (its recommended
//! sampling unless changed), as before presets existed.

use serde::{Deserialize, Serialize};

use crate::protocol::GenerationParams;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    pub system_prompt: String,
    pub params: GenerationParams,
}

/// Adds `preset`, or replaces the one of the same name (names are trimmed;
/// an empty one is refused). Returns the name it was kept under.
pub fn save(list: &mut Vec<Preset>, mut preset: Preset) -> Option<String> {
    preset.name = preset.name.trim().to_string();
    if preset.name.is_empty() {
        return None;
    }
    let name = preset.name.clone();
    match list.iter_mut().find(|p| p.name == name) {
        Some(old) => *old = preset,
        None => list.push(preset),
    }
    list.sort_by_key(|p| p.name.to_lowercase());
    Some(name)
}

pub fn remove(list: &mut Vec<Preset>, name: &str) {
    list.retain(|p| p.name != name);
}

pub fn find<'a>(list: &'a [Preset], name: &str) -> Option<&'a Preset> {
    list.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset(name: &str, t: f32) -> Preset {
        Preset { name: name.into(), system_prompt: format!("You are {name}."), params: GenerationParams { temperature: t, top_k: 0, top_p: 1.0, min_p: 0.1, repetition_penalty: 1.0, max_tokens: 64, seed: 0 } }
    }

    #[test]
    fn presets_are_kept_by_name_sorted_and_replaced_in_place() {
        let mut list = Vec::new();
        assert_eq!(save(&mut list, preset("  Pirate ", 0.9)).as_deref(), Some("Pirate"));
        save(&mut list, preset("lawyer", 0.1));
        save(&mut list, preset("Bard", 1.2));
        assert_eq!(list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["Bard", "lawyer", "Pirate"]);
        save(&mut list, preset("Pirate", 0.5));
        assert_eq!(list.len(), 3);
        assert_eq!(find(&list, "Pirate").unwrap().params.temperature, 0.5);
        assert_eq!(save(&mut list, preset("   ", 0.5)), None);
        remove(&mut list, "lawyer");
        assert!(find(&list, "lawyer").is_none());
        assert_eq!(list.len(), 2);
    }
}
