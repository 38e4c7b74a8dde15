/* dynamatch compressor plugin: a grey-box family member driven by a knob -> parameter map.
 *
 * The model's per-sample step is generated from its one description in dynamatch.models.family
 * (dynamatch_model.hpp: gainStep for the linked gain path, outputStep per channel), statement for
 * statement the render kernel of dynamatch.Compressor.process.  Per sample (non-finite input samples
 * count as 0): the detector sees the channel sample of largest magnitude x_d, levelLog = ln max(|x_d|, 1e-10),
 * g = gainStep(x_d, levelLog), and each channel c gets y_c = outputStep(x_c, g) 10^(makeup_db/20) 10^(output_gain_db/20).
 *
 * The map (per mode: breakpoints in peak reduction and piecewise-cubic coefficients of every parameter in
 * real units) is evaluated here, in the DSP, whenever a parameter changes, so automation and headless hosts
 * work.  The kernel-space parameters (dB, ratios, one-pole coefficients), the output gain and the bypass
 * mix follow their targets through a 20 ms one-pole; right after activate() they start at their targets,
 * so constant settings reproduce the Python render.
 *
 * Optional residual GRU (4A-2A-G): with c = the model's output (no make-up), h = GRU([c, limit, pr/100], h)
 * and y = (c + w.h + b) 10^(output_gain_db/20); PyTorch gate order r, z, n.
 */

#include "DistrhoPlugin.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define DYNAMATCH_HAVE_MXCSR 1
#endif

START_NAMESPACE_DISTRHO

namespace {

constexpr double kDbToLog = 0.11512925464970229; // ln(10) / 20
constexpr double kSmoothingSeconds = 0.020;      // time constant of the parameter smoothing
constexpr double kSettleTolerance = 1e-9;        // relative distance at which a smoother snaps to its target

enum ParameterIndex : uint32_t {
    kPeakReduction = 0,
    kMode,
    kOutputGainDb,
    kBypass,
#if DYNAMATCH_EXPERT
    kRawParameters,
    kRawFirst, // then one raw parameter per model parameter (dynamatch_model::kParameters)
    kParameterCount = kRawFirst + dynamatch_model::kParameters
#else
    kParameterCount
#endif
};

// Quantities that are smoothed towards their targets, sample by sample: the model's kernel parameters
// (indices 0 .. kKernelParameters - 1), then these.
enum SmoothedIndex : int {
    kPostGain = dynamatch_model::kKernelParameters, // make-up (no GRU) times output gain, linear
    kWetMix,           // 1 = processed, 0 = bypassed
    kLimit,            // GRU conditioning: mode
    kKnob,             // GRU conditioning: peak reduction / 100
    kSmoothedCount
};

inline bool isFiniteSample(const float value) noexcept
{
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return (bits & 0x7f800000u) != 0x7f800000u;
}

inline double sigmoid(const double v) noexcept { return 1.0 / (1.0 + std::exp(-v)); }

// Piecewise cubic of one mode: value = ((c0 d + c1) d + c2) d + c3, d = knob - breakpoints[k],
// knob clamped to the breakpoints (the end values are held outside them).
double evaluateMap(const dynamatch_map::Mode& mode, const int parameter, double knob) noexcept
{
    const int segments = mode.segments;
    const double* const x = mode.breakpoints;
    if (knob < x[0]) knob = x[0];
    if (knob > x[segments]) knob = x[segments];
    int k = 0;
    while (k + 1 < segments && knob >= x[k + 1])
        ++k;
    const double d = knob - x[k];
    const double* const c = mode.coefficients + parameter * 4 * segments; // [parameter][power][segment]
    return ((c[k] * d + c[segments + k]) * d + c[2 * segments + k]) * d + c[3 * segments + k];
}

} // namespace

class DynamatchPlugin : public Plugin
{
public:
    DynamatchPlugin()
        : Plugin(kParameterCount, 0, 0)
    {
        for (uint32_t i = 0; i < kParameterCount; ++i)
        {
            Parameter parameter;
            initParameter(i, parameter);
            fParameters[i] = parameter.ranges.def;
        }
        resetState();
        updateTargets();
        snapSmoothers();
    }

protected:
    const char* getLabel() const override { return DYNAMATCH_LABEL; }
    const char* getDescription() const override { return DYNAMATCH_DESCRIPTION; }
    const char* getMaker() const override { return "dynamatch"; }
    const char* getLicense() const override { return "MIT"; }
    uint32_t getVersion() const override { return d_version(DYNAMATCH_VERSION_MAJOR, DYNAMATCH_VERSION_MINOR, DYNAMATCH_VERSION_MICRO); }
    int64_t getUniqueId() const override { return DYNAMATCH_UNIQUE_ID; }

    void initParameter(uint32_t index, Parameter& parameter) override
    {
        parameter.hints = kParameterIsAutomatable;
        switch (index)
        {
        case kPeakReduction:
            parameter.name = "Peak Reduction";
            parameter.symbol = "peak_reduction";
            parameter.ranges.min = 0.0f;
            parameter.ranges.max = 100.0f;
            parameter.ranges.def = DYNAMATCH_DEFAULT_PEAK_REDUCTION;
            break;
        case kMode: {
            parameter.hints |= kParameterIsInteger | kParameterIsBoolean;
            parameter.name = "Mode";
            parameter.symbol = "mode";
            parameter.ranges.min = 0.0f;
            parameter.ranges.max = 1.0f;
            parameter.ranges.def = 0.0f;
            ParameterEnumerationValue* const values = new ParameterEnumerationValue[2];
            values[0].label = "Compress";
            values[0].value = 0.0f;
            values[1].label = "Limit";
            values[1].value = 1.0f;
            parameter.enumValues.count = 2;
            parameter.enumValues.restrictedMode = true;
            parameter.enumValues.values = values;
            break;
        }
        case kOutputGainDb:
            parameter.name = "Output Gain";
            parameter.symbol = "output_gain_db";
            parameter.unit = "dB";
            parameter.ranges.min = -24.0f;
            parameter.ranges.max = 24.0f;
            parameter.ranges.def = 0.0f;
            break;
        case kBypass:
            parameter.initDesignation(kParameterDesignationBypass);
            break;
#if DYNAMATCH_EXPERT
        case kRawParameters:
            parameter.hints |= kParameterIsInteger | kParameterIsBoolean;
            parameter.name = "Raw Parameters";
            parameter.symbol = "raw_parameters";
            parameter.ranges.min = 0.0f;
            parameter.ranges.max = 1.0f;
            parameter.ranges.def = 1.0f;
            break;
        default:
            if (index >= kRawFirst && index < kParameterCount)
            {
                const uint32_t i = index - kRawFirst;
                if (dynamatch_raw::kLogarithmic[i])
                    parameter.hints |= kParameterIsLogarithmic;
                parameter.name = dynamatch_raw::kNames[i];
                parameter.symbol = dynamatch_raw::kSymbols[i];
                parameter.unit = dynamatch_raw::kUnits[i];
                parameter.ranges.min = dynamatch_raw::kMin[i];
                parameter.ranges.max = dynamatch_raw::kMax[i];
                parameter.ranges.def = dynamatch_raw::kDefault[i];
            }
            break;
#endif
        }
        parameter.shortName = parameter.name;
    }

    float getParameterValue(uint32_t index) const override
    {
        return index < kParameterCount ? fParameters[index] : 0.0f;
    }

    void setParameterValue(uint32_t index, float value) override
    {
        if (index >= kParameterCount || !isFiniteSample(value) || fParameters[index] == value)
            return;
        fParameters[index] = value;
        fDirty = true;
    }

    void sampleRateChanged(double) override
    {
        fDirty = true;
        fSampleRateChanged = true;
    }

    void bufferSizeChanged(uint32_t) override
    {
        fBufferSizeChanged = true;
    }

    // A host that re-activates only because its maximum block size changed (pedalboard does, when the
    // length of successive process calls varies) keeps the signal's state: the gain does not depend on
    // the block size.  Any other (re)activation starts a new signal, as dynamatch's render does.
    void activate() override
    {
        if (fSampleRateChanged || !fBufferSizeChanged)
        {
            resetState();
            fStartAtTarget = true;
        }
        fSampleRateChanged = false;
        fBufferSizeChanged = false;
        fDirty = true;
    }

    void run(const float** inputs, float** outputs, uint32_t frames) override
    {
#ifdef DYNAMATCH_HAVE_MXCSR
        const unsigned int savedCsr = _mm_getcsr();
        _mm_setcsr(savedCsr | 0x8040u); // flush denormals to zero (FTZ | DAZ) while processing
#endif
        if (fDirty)
            updateTargets();
        if (fStartAtTarget)
        {
            snapSmoothers();
            fStartAtTarget = false;
        }

        for (uint32_t n = 0; n < frames; ++n)
        {
            if (fMoving)
                advanceSmoothers();

            double dry[DISTRHO_PLUGIN_NUM_INPUTS];
            double detector = 0.0;
            for (int c = 0; c < DISTRHO_PLUGIN_NUM_INPUTS; ++c)
            {
                const float x = inputs[c][n];
                dry[c] = isFiniteSample(x) ? static_cast<double>(x) : 0.0;
                if (c == 0 || std::fabs(dry[c]) > std::fabs(detector))
                    detector = dry[c];
            }
            const double magnitude = std::fabs(detector);
            const double levelLog = std::log(magnitude > dynamatch_model::kEpsilon ? magnitude : dynamatch_model::kEpsilon);
            const double g = dynamatch_model::gainStep(fPrologue, fState, detector, levelLog);

            const double mix = fValue[kWetMix];
            for (int c = 0; c < DISTRHO_PLUGIN_NUM_INPUTS; ++c)
            {
                const double modelled = dynamatch_model::outputStep(fPrologue, fOutput[c], dry[c], g);
#if DYNAMATCH_GRU_INPUTS
                const double wet = gruStep(c, modelled) * fValue[kPostGain];
#else
                const double wet = modelled * fValue[kPostGain];
#endif
                const double y = mix * wet + (1.0 - mix) * dry[c]; // exactly wet when mix == 1
                outputs[c][n] = static_cast<float>(y);
            }
        }
#ifdef DYNAMATCH_HAVE_MXCSR
        _mm_setcsr(savedCsr);
#endif
    }

private:
    float fParameters[kParameterCount];
    double fTarget[kSmoothedCount];
    double fValue[kSmoothedCount];
    double fSmoothingCoefficient = 0.0;
    dynamatch_model::Prologue fPrologue;              // parameter-only quantities of fValue
    dynamatch_model::State fState;                    // the model's linked gain path
    dynamatch_model::OutputState fOutput[DISTRHO_PLUGIN_NUM_INPUTS]; // its per-channel output stage
    bool fDirty = true;
    bool fStartAtTarget = true;
    bool fSampleRateChanged = false;
    bool fBufferSizeChanged = false;
    bool fMoving = false;
#if DYNAMATCH_GRU_INPUTS
    double fHidden[DISTRHO_PLUGIN_NUM_INPUTS][8];

    // One GRU step for channel c on compressor output v; returns v + w.h + b.
    double gruStep(const int c, const double v) noexcept
    {
        using namespace dynamatch_gru;
        double u[DYNAMATCH_GRU_INPUTS];
        u[0] = v;
#if DYNAMATCH_GRU_INPUTS == 3
        u[1] = fValue[kLimit];
        u[2] = fValue[kKnob];
#endif
        double* const h = fHidden[c];
        double next[8];
        for (int j = 0; j < 8; ++j)
        {
            double gi[3], gh[3];
            for (int gate = 0; gate < 3; ++gate)
            {
                const int row = gate * 8 + j;
                double a = kBiasIh[row], b = kBiasHh[row];
                for (int i = 0; i < DYNAMATCH_GRU_INPUTS; ++i)
                    a += kWeightIh[row][i] * u[i];
                for (int i = 0; i < 8; ++i)
                    b += kWeightHh[row][i] * h[i];
                gi[gate] = a;
                gh[gate] = b;
            }
            const double r = sigmoid(gi[0] + gh[0]);
            const double z = sigmoid(gi[1] + gh[1]);
            const double candidate = std::tanh(gi[2] + r * gh[2]);
            next[j] = (1.0 - z) * candidate + z * h[j];
        }
        double out = kLinearBias;
        for (int j = 0; j < 8; ++j)
        {
            h[j] = next[j];
            out += kLinearWeight[j] * next[j];
        }
        return v + out;
    }
#endif

    void resetState() noexcept
    {
        fState = dynamatch_model::State();
        for (int c = 0; c < DISTRHO_PLUGIN_NUM_INPUTS; ++c)
            fOutput[c] = dynamatch_model::OutputState();
#if DYNAMATCH_GRU_INPUTS
        std::memset(fHidden, 0, sizeof fHidden);
#endif
    }

    // Evaluates the map (or the raw parameters) and converts to the smoothed quantities.
    void updateTargets() noexcept
    {
        const double sampleRate = getSampleRate() > 0.0 ? getSampleRate() : 44100.0;
        const double knob = fParameters[kPeakReduction];
        const bool limit = fParameters[kMode] > 0.5f;
        const dynamatch_map::Mode& mode = dynamatch_map::kModes[limit ? 1 : 0];

        double values[dynamatch_model::kParameters];
        for (int i = 0; i < dynamatch_model::kParameters; ++i)
            values[i] = evaluateMap(mode, i, knob);
#if DYNAMATCH_EXPERT
        if (fParameters[kRawParameters] > 0.5f)
            for (int i = 0; i < dynamatch_model::kParameters; ++i)
                values[i] = fParameters[kRawFirst + static_cast<uint32_t>(i)];
#endif
        // the same clamps as dynamatch.maps.parameter_map.clamp, then real units -> kernel space
        for (int i = 0; i < dynamatch_model::kParameters; ++i)
            values[i] = dynamatch_model::clampValue(i, values[i]);
        for (int i = 0; i < dynamatch_model::kKernelParameters; ++i)
            fTarget[i] = dynamatch_model::toKernel(i, values[i], sampleRate);
        const double makeupDb = values[dynamatch_model::kParameters - 1];
#if DYNAMATCH_GRU_INPUTS
        (void)makeupDb;
        fTarget[kPostGain] = std::exp(kDbToLog * fParameters[kOutputGainDb]);
#else
        fTarget[kPostGain] = std::exp(kDbToLog * makeupDb) * std::exp(kDbToLog * fParameters[kOutputGainDb]);
#endif
        fTarget[kWetMix] = fParameters[kBypass] > 0.5f ? 0.0 : 1.0;
        fTarget[kLimit] = limit ? 1.0 : 0.0;
        fTarget[kKnob] = knob / 100.0;

        fSmoothingCoefficient = -std::expm1(-1.0 / (kSmoothingSeconds * sampleRate));
        fDirty = false;
        fMoving = true;
    }

    void snapSmoothers() noexcept
    {
        for (int i = 0; i < kSmoothedCount; ++i)
            fValue[i] = fTarget[i];
        dynamatch_model::prepare(fValue, fPrologue);
        fMoving = false;
    }

    void advanceSmoothers() noexcept
    {
        bool moving = false;
        for (int i = 0; i < kSmoothedCount; ++i)
        {
            const double distance = fTarget[i] - fValue[i];
            if (std::fabs(distance) <= kSettleTolerance * std::fabs(fTarget[i]) + 1e-15)
                fValue[i] = fTarget[i];
            else
            {
                fValue[i] += fSmoothingCoefficient * distance;
                moving = true;
            }
        }
        dynamatch_model::prepare(fValue, fPrologue);
        fMoving = moving;
    }

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(DynamatchPlugin)
};

Plugin* createPlugin()
{
    return new DynamatchPlugin();
}

END_NAMESPACE_DISTRHO
