/* DPF plugin description of the dynamatch compressor plugin.
 *
 * One source builds two plugins: the Makefile passes DYNAMATCH_CHANNELS=1 (mono, 1 in/1 out) or
 * DYNAMATCH_CHANNELS=2 (stereo-linked, 2 in/2 out).  Names, URIs and ids come from the header that
 * dynamatch.export.plugin generates from a parameter map (dynamatch_generated.h).
 */
#ifndef DISTRHO_PLUGIN_INFO_H_INCLUDED
#define DISTRHO_PLUGIN_INFO_H_INCLUDED

#include "dynamatch_generated.h"

#ifndef DYNAMATCH_CHANNELS
#error "build with -DDYNAMATCH_CHANNELS=1 or 2"
#endif

#if DYNAMATCH_CHANNELS == 1
#define DISTRHO_PLUGIN_NAME DYNAMATCH_NAME " (mono)"
#define DISTRHO_PLUGIN_URI DYNAMATCH_URI "-mono"
#define DISTRHO_PLUGIN_CLAP_ID DYNAMATCH_CLAP_ID ".mono"
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Fx|Dynamics|Mono"
#define DISTRHO_PLUGIN_CLAP_FEATURES "audio-effect", "compressor", "mono"
#define DYNAMATCH_UNIQUE_ID DYNAMATCH_UNIQUE_ID_MONO
#elif DYNAMATCH_CHANNELS == 2
#define DISTRHO_PLUGIN_NAME DYNAMATCH_NAME
#define DISTRHO_PLUGIN_URI DYNAMATCH_URI
#define DISTRHO_PLUGIN_CLAP_ID DYNAMATCH_CLAP_ID
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Fx|Dynamics|Stereo"
#define DISTRHO_PLUGIN_CLAP_FEATURES "audio-effect", "compressor", "stereo"
#define DYNAMATCH_UNIQUE_ID DYNAMATCH_UNIQUE_ID_STEREO
#else
#error "DYNAMATCH_CHANNELS must be 1 or 2"
#endif

#define DISTRHO_PLUGIN_HAS_UI 0
#define DISTRHO_PLUGIN_IS_RT_SAFE 1
#define DISTRHO_PLUGIN_NUM_INPUTS DYNAMATCH_CHANNELS
#define DISTRHO_PLUGIN_NUM_OUTPUTS DYNAMATCH_CHANNELS
#define DISTRHO_PLUGIN_WANT_LATENCY 0
#define DISTRHO_PLUGIN_LV2_CATEGORY "lv2:CompressorPlugin"

#endif
